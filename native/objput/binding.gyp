{
  "targets": [
    {
      "target_name": "objput",
      "sources": ["objput.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
