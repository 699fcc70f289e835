{
  "targets": [
    {
      "target_name": "tcpopt",
      "sources": ["tcpopt.c"],
      "include_dirs": ["../include"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
