// ESLint (flat config) with typescript-eslint's typed linting over the code and the tests.
// Formatting is Prettier's (`npm run format`), not ESLint's.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', 'tmp/', 'scratch/', '.tap/'] },
  {
    files: ['src/**/*.ts', 'modules/**/*.ts', 'test/**/*.ts', 'conformance/**/*.ts'],
    extends: [tseslint.configs.base],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // A tap subtest's promise needs no handling: tap reports the subtest's failures itself.
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafePromises: [{ from: 'package', name: 'PromiseWithSubtest', package: '@tapjs/core' }] }],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
    },
  },
  // The example bots are plain JavaScript (ESM) that runs without a build: checked for mistakes
  // with ESLint's own rules, no type information.
  {
    files: ['examples/**/*.js'],
    languageOptions: { ecmaVersion: 'latest', sourceType: 'module', globals: { process: 'readonly', console: 'readonly' } },
    rules: { 'no-undef': 'error', 'no-unused-vars': 'error', 'prefer-const': 'error', eqeqeq: 'error' },
  },
);
