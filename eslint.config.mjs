// Lint rules of the repository. The layer boundaries of the library are enforced here:
// core/ and client/ never import Nest, Passport or an HTTP framework, and lower layers never import higher ones.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const FRAMEWORKS = ['@nestjs/*', 'passport', 'passport-*', 'express', 'express-*', 'fastify', '@fastify/*', 'rxjs', 'reflect-metadata'];

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', 'coverage/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        console: 'readonly',
        process: 'readonly',
        Buffer: 'readonly',
        require: 'readonly',
        module: 'writable',
        __dirname: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        URL: 'readonly',
        fetch: 'readonly',
        AbortController: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        structuredClone: 'readonly',
        performance: 'readonly',
        queueMicrotask: 'readonly',
        Response: 'readonly',
        Request: 'readonly',
        Headers: 'readonly',
        SharedArrayBuffer: 'readonly',
        Atomics: 'readonly',
        jest: 'readonly',
        describe: 'readonly',
        it: 'readonly',
        test: 'readonly',
        expect: 'readonly',
        beforeAll: 'readonly',
        afterAll: 'readonly',
        beforeEach: 'readonly',
        afterEach: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-unsafe-function-type': 'off',
      '@typescript-eslint/no-require-imports': 'off',
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  {
    files: ['libs/a2a-auth/src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: FRAMEWORKS, message: 'core/ is framework-free: no Nest, Passport or HTTP framework imports.' },
            {
              group: ['**/nest/**', '**/nest', '**/client/**', '**/client', '@a2a-js/*'],
              message: 'core/ is the lowest layer: it imports neither nest/ nor client/ nor the A2A SDK.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['libs/a2a-auth/src/client/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: FRAMEWORKS, message: 'client/ has no Nest dependency: a calling agent must not load Nest, Passport or an HTTP framework.' },
            { group: ['**/nest/**', '**/nest'], message: 'client/ must not import the Nest layer.' },
          ],
        },
      ],
    },
  },
  {
    files: ['apps/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/libs/**'], message: 'The sample imports the library only as `nestjs-a2a-auth`, as a user would.' }] },
      ],
    },
  },
);
