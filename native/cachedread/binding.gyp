{
  "targets": [
    {
      "target_name": "cachedread",
      "sources": ["cachedread.c"],
      "include_dirs": ["../include"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
