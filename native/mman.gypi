# The addon's build (node-gyp): every native/*.cc, node-addon-api's headers, C++17 with
# exceptions; MMAN_TEST_HOOKS unless prebuildify builds it. binding.gyp includes this file.
{
  "targets": [
    {
      "target_name": "mman",
      "sources": ["<!@(node -p \"require('fs').readdirSync('native').filter((f) => f.endsWith('.cc')).sort().map((f) => 'native/' + f).join(' ')\")"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS", "_GNU_SOURCE",
                  "<!@(node -p \"process.env.PREBUILD_PLATFORM ? '' : 'MMAN_TEST_HOOKS'\")"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-fexceptions", "-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
