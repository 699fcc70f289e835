{
  "targets": [
    {
      "target_name": "crc32",
      "sources": ["crc32.c"],
      "include_dirs": ["../include"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
