{
  "targets": [
    {
      "target_name": "fdpoll",
      "sources": ["fdpoll.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
