// Plain CommonJS Jest with @swc/jest (see ../shared/TOOLCHAIN.md): Nest 12, jose, oidc-provider and a few
// others are ESM-only, so they are transformed too (an allow-list, nested copies included).
const esmOnly = [
  '@nestjs',
  'jose',
  'oidc-provider',
  'canonicalize',
  'file-type',
  'token-types',
  'strtok3',
  'uint8array-extras',
  '@tokenizer',
  '@borewit',
  'cookie',
];
const swcTs = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2022',
      keepClassNames: true,
    },
    module: { type: 'commonjs' },
    sourceMaps: 'inline',
  },
];
const swcJs = ['@swc/jest', { jsc: { parser: { syntax: 'ecmascript' }, target: 'es2022' }, module: { type: 'commonjs' } }];

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/libs', '<rootDir>/apps', '<rootDir>/test'],
  // The packaged build (npm run build:lib) has its own package.json named nestjs-a2a-auth: keep it out of the module map.
  modulePathIgnorePatterns: ['<rootDir>/libs/a2a-auth/dist/'],
  testMatch: ['**/*.spec.ts', '**/*.e2e-spec.ts'],
  transform: {
    '^.+\\.ts$': swcTs,
    '^.+\\.(js|mjs|cjs)$': swcJs,
  },
  // Ignore node_modules except the ESM-only packages above, wherever they are nested.
  transformIgnorePatterns: [`/node_modules/(?!(?:${esmOnly.join('|')})/)(?:@[^/]+/)?[^/]+/(?!.*/node_modules/)`],
  moduleNameMapper: {
    '^nestjs-a2a-auth$': '<rootDir>/libs/a2a-auth/src/index.ts',
    '^nestjs-a2a-auth/(client|core)$': '<rootDir>/libs/a2a-auth/src/$1/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  setupFiles: ['<rootDir>/test/setup/quiet-runtime-warning.js'],
  // Test keys are made once per run, outside this process's node:crypto (see test/fixtures/key-pool.ts), and a
  // watchdog turns a native hang into a fast failure (see test/setup/watchdog.js).
  globalSetup: '<rootDir>/test/setup/global-setup.ts',
  globalTeardown: '<rootDir>/test/setup/global-teardown.ts',
  setupFilesAfterEnv: ['<rootDir>/test/setup/watchdog-jest.js'],
  testTimeout: 30000,
};
