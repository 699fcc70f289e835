// StrataFS reliability suite: a stand-in for /dev/fuse when fuzzing the FUSE
// request decoder without a kernel. /dev/fuse delivers one request per read
// and takes one reply per write; a SOCK_SEQPACKET socket pair keeps exactly
// those message boundaries, which Node cannot create on its own.
//
// usage: seqpacket-relay PROGRAM ARGS...
// Runs PROGRAM with one end of the pair as fd 3. Frames on stdin
// ([u32 little-endian length][bytes]) are sent as one packet each; every
// packet PROGRAM writes comes out on stdout in the same framing. When PROGRAM
// exits the relay exits with its status (128 + signal if killed).
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define PACKET_BYTES (4 << 20)

static unsigned char packet[PACKET_BYTES];

static int readFull(int fd, void *buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = read(fd, (char *)buf + done, len - done);
    if (n == 0) return 0;
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    done += (size_t)n;
  }
  return 1;
}

static int writeFull(int fd, const void *buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = write(fd, (const char *)buf + done, len - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    done += (size_t)n;
  }
  return 0;
}

static int childStatus(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return 1;
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: seqpacket-relay PROGRAM ARGS...\n");
    return 2;
  }
  int sp[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp) != 0) {
    perror("socketpair");
    return 2;
  }
  // Replies as large as a 1 MiB READ must fit in one packet.
  int bufferBytes = PACKET_BYTES;
  for (int i = 0; i < 2; i++) {
    setsockopt(sp[i], SOL_SOCKET, SO_SNDBUFFORCE, &bufferBytes, sizeof bufferBytes);
    setsockopt(sp[i], SOL_SOCKET, SO_RCVBUFFORCE, &bufferBytes, sizeof bufferBytes);
  }
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return 2;
  }
  if (pid == 0) {
    close(sp[0]);
    if (dup2(sp[1], 3) < 0) _exit(2);
    if (sp[1] != 3) close(sp[1]);
    execvp(argv[1], argv + 1);
    perror(argv[1]);
    _exit(127);
  }
  close(sp[1]);
  signal(SIGPIPE, SIG_IGN);
  struct pollfd fds[2] = {{.fd = 0, .events = POLLIN}, {.fd = sp[0], .events = POLLIN}};
  for (;;) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = recv(sp[0], packet, sizeof packet, 0);
      if (n <= 0) break; // PROGRAM closed its end or exited
      uint32_t len = (uint32_t)n;
      if (writeFull(1, &len, 4) != 0 || writeFull(1, packet, (size_t)n) != 0) break;
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      uint32_t len;
      int rc = readFull(0, &len, 4);
      if (rc <= 0 || len > sizeof packet || readFull(0, packet, len) <= 0) {
        // Our caller is done: end PROGRAM and report how it ended.
        kill(pid, SIGTERM);
        break;
      }
      if (send(sp[0], packet, len, 0) < 0 && errno != EINTR) break;
    }
  }
  close(sp[0]);
  return childStatus(pid);
}
