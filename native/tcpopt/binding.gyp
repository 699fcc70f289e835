{
  "targets": [
    {
      "target_name": "tcpopt",
      "sources": ["tcpopt.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
