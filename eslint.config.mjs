// npm run lint: ESLint for correctness (typescript-eslint's recommended rules, type-aware),
// Prettier for the layout (prettier --check). Both cover src/ and test/.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['lib/', 'build/', 'build-*/', 'prebuilds/', 'docs/', 'node_modules/', 'bench/', 'examples/', 'scripts/', '.ci/', 'test/fixtures/', 'test/runtimes/', '*.config.*', 'jest.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
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
