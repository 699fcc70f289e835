{
  "targets": [
    {
      "target_name": "objput",
      "sources": ["objput.c"],
      "include_dirs": ["../include"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
