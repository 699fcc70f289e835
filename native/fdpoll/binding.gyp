{
  "targets": [
    {
      "target_name": "fdpoll",
      "sources": ["fdpoll.c", "furing.c"],
      "include_dirs": ["../include"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
