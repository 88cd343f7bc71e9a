// The wire types live one folder up, so that `core/options.ts` (the `card.extendedCardFor` signature) can name them
// without an import cycle between `core` and `core/card`; this module keeps the old import path.
export type * from '../agent-card.types';
