{
  "targets": [
    {
      "target_name": "dgram_native",
      "sources": ["src/dgram_native.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"]
    }
  ]
}
