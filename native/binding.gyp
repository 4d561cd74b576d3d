{
  "targets": [
    {
      "target_name": "flowscope",
      "sources": ["addon.cc", "errors.cc", "datapath.cc", "attach.cc", "drain.cc", "test_run.cc", "pins.cc", "previous_maps.cc", "uninstall.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "../bpf",
        "../bpf/.output",
        "<!@(pkg-config --cflags-only-I libbpf | sed 's/-I//g')"
      ],
      "libraries": ["<!@(pkg-config --libs libbpf)"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "cflags_cc!": ["-fno-exceptions"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"]
    }
  ]
}
