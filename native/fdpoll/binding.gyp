{
  "targets": [
    {
      "target_name": "fdpoll",
      "sources": ["fdpoll.c", "furing.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
