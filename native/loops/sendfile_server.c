// The floor for `mman bench serve`: a single-threaded HTTP/1.1 server that answers every
// request on a keep-alive connection with the whole of one file, the header with send(MSG_MORE)
// and the body with sendfile(2) from the page cache, on non-blocking sockets under epoll.
// It reads requests only to find where each ends (a blank line; no request body). Prints the
// port it listens on (127.0.0.1, chosen by the kernel), then serves until SIGTERM.
// Usage: sendfile_server FILE
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_EVENTS 64
#define REQUEST_MAX 8192

struct conn {
  int fd;
  char request[REQUEST_MAX];
  size_t have;       // bytes of request[] read and not yet answered
  int sending;       // 1 while a response is under way
  char header[128];
  size_t header_len, header_sent;
  off_t body_sent;
};

static int file_fd;
static off_t file_size;
static int epoll_fd;

static void fail(const char *what) {
  perror(what);
  exit(1);
}

static void close_conn(struct conn *c) {
  close(c->fd);
  free(c);
}

// Where the first complete request in c->request ends (just past its blank line), or 0.
static size_t request_end(const struct conn *c) {
  for (size_t i = 3; i < c->have; i++)
    if (c->request[i - 3] == '\r' && c->request[i - 2] == '\n' && c->request[i - 1] == '\r' && c->request[i] == '\n')
      return i + 1;
  return 0;
}

// Starts the answer to the first complete request, if there is one.
static void start_response(struct conn *c) {
  size_t end = request_end(c);
  if (end == 0) return;
  memmove(c->request, c->request + end, c->have - end);
  c->have -= end;
  c->header_len = (size_t)snprintf(c->header, sizeof c->header,
                                   "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                                   "Content-Length: %lld\r\n\r\n",
                                   (long long)file_size);
  c->header_sent = 0;
  c->body_sent = 0;
  c->sending = 1;
}

// Sends what it can of the response under way: 1 when it is all sent, 0 when the socket is
// full (EPOLLOUT will say when to go on), -1 when the connection failed.
static int send_some(struct conn *c) {
  while (c->header_sent < c->header_len) {
    ssize_t n = send(c->fd, c->header + c->header_sent, c->header_len - c->header_sent, MSG_MORE | MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN ? 0 : -1;
    c->header_sent += (size_t)n;
  }
  while (c->body_sent < file_size) {
    off_t offset = c->body_sent;
    ssize_t n = sendfile(c->fd, file_fd, &offset, (size_t)(file_size - c->body_sent));
    if (n < 0) return errno == EAGAIN ? 0 : -1;
    if (n == 0) return -1;  // the file shrank
    c->body_sent = offset;
  }
  c->sending = 0;
  return 1;
}

// Reads what arrived and answers every complete request, one after the other.
static void on_event(struct conn *c, unsigned events) {
  if (events & (EPOLLERR | EPOLLHUP)) {
    close_conn(c);
    return;
  }
  for (;;) {
    if (c->sending) {
      int sent = send_some(c);
      if (sent < 0) {
        close_conn(c);
        return;
      }
      if (sent == 0) return;
    }
    start_response(c);
    if (c->sending) continue;
    if (c->have == REQUEST_MAX) {  // a request longer than the buffer: not one of ours
      close_conn(c);
      return;
    }
    ssize_t n = read(c->fd, c->request + c->have, REQUEST_MAX - c->have);
    if (n == 0 || (n < 0 && errno != EAGAIN)) {
      close_conn(c);
      return;
    }
    if (n < 0) return;
    c->have += (size_t)n;
  }
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: sendfile_server FILE\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  file_fd = open(argv[1], O_RDONLY | O_CLOEXEC);
  if (file_fd < 0) fail("open");
  struct stat st;
  if (fstat(file_fd, &st) != 0) fail("fstat");
  file_size = st.st_size;

  int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listener < 0) fail("socket");
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0) fail("bind");
  if (listen(listener, 128) != 0) fail("listen");
  socklen_t length = sizeof address;
  if (getsockname(listener, (struct sockaddr *)&address, &length) != 0) fail("getsockname");
  printf("%d\n", ntohs(address.sin_port));
  fflush(stdout);

  epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) fail("epoll_create1");
  struct epoll_event event = {.events = EPOLLIN, .data.ptr = NULL};
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listener, &event) != 0) fail("epoll_ctl");

  struct epoll_event events[MAX_EVENTS];
  for (;;) {
    int ready = epoll_wait(epoll_fd, events, MAX_EVENTS, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      fail("epoll_wait");
    }
    for (int i = 0; i < ready; i++) {
      if (events[i].data.ptr == NULL) {
        int fd;
        while ((fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct conn *c = calloc(1, sizeof *c);
          if (c == NULL) fail("calloc");
          c->fd = fd;
          // Edge-triggered: each event is followed by reads or writes until EAGAIN.
          struct epoll_event ce = {.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP, .data.ptr = c};
          if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ce) != 0) fail("epoll_ctl");
        }
        continue;
      }
      on_event(events[i].data.ptr, events[i].events);
    }
  }
}
