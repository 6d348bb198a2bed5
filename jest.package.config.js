// npm run test:package: the packed tarball, installed and loaded (test/package.test.ts), which
// the default run (jest.config.js) leaves out.
const base = require('./jest.config.js');

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  testPathIgnorePatterns: ['/node_modules/', '/test/setup/', '/test/fixtures/'],
  testMatch: ['**/test/package.test.ts'],
};
