{
  "targets": [
    {
      "target_name": "mman",
      "sources": [
        "native/addon.cc",
        "native/guard.cc",
        "native/lifetime.cc",
        "native/mapping.cc",
        "native/memory.cc",
        "native/shared.cc",
        "native/futex.cc",
        "native/mutex.cc",
        "native/tools.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "_GNU_SOURCE",
                  "<!@(node -p \"process.env.PREBUILD_PLATFORM ? '' : 'MMAN_TEST_HOOKS'\")"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-fexceptions", "-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
