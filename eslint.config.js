// ESLint flat config: type-aware typescript-eslint plus the folder boundaries of the house style.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

const nodeBuiltins = [
  'node:*',
  'fs',
  'path',
  'os',
  'crypto',
  'child_process',
  'http',
  'https',
  'net',
  'url',
  'util',
  'stream',
];

export default tseslint.config(
  { ignores: ['node_modules/', '.data/', 'coverage/', 'docs/contracts/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['*.js', '*.mjs'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      // Fastify handlers and plugins are async by contract even when they do not await.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // CommonJS modules the Temporal SDK loads by path (require, and its workflow bundler): no type information.
    files: ['**/*.cjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // Workflows are deterministic: no Node builtins, no I/O libraries, no activity implementations.
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: nodeBuiltins, message: 'Workflows must not use Node builtins (non-deterministic I/O).' },
            {
              group: [
                'pg',
                'fastify',
                'pino',
                'jose',
                '@temporalio/client',
                '@temporalio/worker',
                '@temporalio/activity',
              ],
              message: 'Workflows do no I/O: use an activity.',
            },
            {
              group: ['**/api/**', '**/db/**', '**/core/**', '**/stack/**', '**/workers/**'],
              message: 'Workflows import only workflow code.',
            },
            {
              group: ['**/activities/**'],
              allowTypeImports: true,
              message: 'Only type imports of activities are allowed in workflows.',
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'process', message: 'No process.env in workflows: pass configuration in the input.' },
        { name: 'setTimeout', message: 'Use sleep() or condition() from @temporalio/workflow.' },
        { name: 'setInterval', message: 'Use sleep() in a loop from @temporalio/workflow.' },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Math', property: 'random', message: 'Use uuid4() or pass randomness in.' },
      ],
    },
  },
  {
    files: ['activities/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@temporalio/workflow'],
              allowTypeImports: true,
              message: 'Activities must not import workflow code.',
            },
            { group: ['**/api/**'], message: 'Activities must not depend on the API.' },
          ],
        },
      ],
    },
  },
  {
    files: ['api/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/workflows/**/workflow.js'],
              allowTypeImports: true,
              message: 'The API imports workflow types only; use definitions.ts.',
            },
            { group: ['**/activities/**', '**/workers/**'], message: 'The API never runs activities or workers.' },
            { group: ['@temporalio/worker'], message: 'The API talks to Temporal through the client facade.' },
          ],
        },
      ],
    },
  },
  prettier,
);
