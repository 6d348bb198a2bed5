#!/usr/bin/env node
// `npm start`: the page-fault benchmark with its defaults (`mman bench faults`), on a
// scratch file in the temporary directory that is gone when it ends. 20-35 s.
'use strict';
const { join } = require('node:path');
const { main } = require(join(__dirname, '..', 'lib', 'cli', 'index.js'));

main(['bench', 'faults', ...process.argv.slice(2)]).then((status) => {
  if (status === 0) {
    console.log('\nMore: npx mman bench faults --help | npx mman bench io | npx mman residency FILE...');
  }
  process.exitCode = status;
});
