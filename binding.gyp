# node-gyp's entry point: the addon's build is native/mman.gypi, which the npm package ships
# (this file is left out of it, so that no package manager runs node-gyp on install:
# `npm run build:addon` writes it again in an installed package, see scripts/build-addon.js).
{ "includes": ["native/mman.gypi"] }
