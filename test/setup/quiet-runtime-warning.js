// oidc-provider prints "Unsupported runtime" on Node 20 at load time; that line is noise in test output.
const warn = console.warn;
console.warn = (...args) => {
  if (typeof args[0] === 'string' && args[0].includes('Unsupported runtime')) return;
  warn(...args);
};
