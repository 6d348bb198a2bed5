// npm run lint: ESLint for correctness (typescript-eslint's recommended rules on src/ and
// test/, ESLint's on the JavaScript: benchmarks, scripts, examples, child programs), Prettier
// for the layout of src/ and test/ (prettier --check).
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['lib/', 'build/', 'build-*/', 'prebuilds/', 'docs/', 'node_modules/', '*.config.*', 'jest.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // CommonJS for Node: `require` is how these load the package, and `catch {}` may be empty.
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { ...globals.node, gc: 'readonly', Bun: 'readonly', Deno: 'readonly' } },
    rules: {
      '@typescript-eslint/no-require-imports': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-empty': ['error', { allowEmptyCatch: true }],
      eqeqeq: ['error', 'always'],
      'no-var': 'error',
      'prefer-const': 'error',
    },
  },
  {
    files: ['src/**/*.ts', 'test/**/*.ts'],
    rules: {
      // `require` is how the addon and a built lib/ are loaded; every such use says why.
      '@typescript-eslint/no-require-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      eqeqeq: ['error', 'always'],
      'no-var': 'error',
      'prefer-const': 'error',
      // Prettier lays out the code at 120 columns; comments are held to it here too. Strings and
      // templates (messages, SVG, child programs) may run longer rather than be cut.
      'max-len': ['error', { code: 120, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreUrls: true, ignoreRegExpLiterals: true }],
    },
  },
);
