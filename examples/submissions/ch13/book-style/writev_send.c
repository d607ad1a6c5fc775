/* writev_send.c: the book's writev.c (chapter 13) over a socket, as the book would write
 * it. It sends "size N\n", N bytes (a to z, again and again) and "end\n" in one writev()
 * of three buffers. On a non-blocking socket writev() writes what fits now and says how
 * much; the loop calls it again for the rest, from where it stopped, waiting with poll()
 * until the socket can take more. (The book's writev() writes to the terminal, where
 * everything fits.) */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

void error_handling(char *message);

int main(int argc, char *argv[])
{
    int sock, count = 3;
    struct sockaddr_in serv_adr;
    struct iovec vec[3], *rest = vec;
    struct pollfd pfd;
    char header[64];
    char *body;
    size_t size, i, total, sent = 0;
    ssize_t str_len;

    if (argc != 4) {
        printf("Usage : %s <IP> <port> <size>\n", argv[0]);
        exit(1);
    }
    size = strtoul(argv[3], NULL, 10);
    body = malloc(size ? size : 1);
    if (body == NULL)
        error_handling("malloc() error");
    for (i = 0; i < size; i++)
        body[i] = 'a' + i % 26;
    snprintf(header, sizeof(header), "size %zu\n", size);
    vec[0].iov_base = header;
    vec[0].iov_len = strlen(header);
    vec[1].iov_base = body;
    vec[1].iov_len = size;
    vec[2].iov_base = "end\n";
    vec[2].iov_len = 4;
    total = vec[0].iov_len + vec[1].iov_len + vec[2].iov_len;

    sock = socket(PF_INET, SOCK_STREAM, 0);
    memset(&serv_adr, 0, sizeof(serv_adr));
    serv_adr.sin_family = AF_INET;
    serv_adr.sin_addr.s_addr = inet_addr(argv[1]);
    serv_adr.sin_port = htons(atoi(argv[2]));
    if (connect(sock, (struct sockaddr *)&serv_adr, sizeof(serv_adr)) == -1)
        error_handling("connect() error");
    fcntl(sock, F_SETFL, fcntl(sock, F_GETFL, 0) | O_NONBLOCK);

    while (count > 0) {
        str_len = writev(sock, rest, count);
        if (str_len == -1) {
            if (errno != EAGAIN && errno != EINTR)
                error_handling("writev() error");
            str_len = 0;
        }
        sent += str_len;
        printf("writev() wrote %zd bytes: %zu of %zu\n", str_len, sent, total);
        /* step over what was written: whole buffers first, then part of one */
        while (count > 0 && (size_t)str_len >= rest->iov_len) {
            str_len -= rest->iov_len;
            rest++;
            count--;
        }
        if (count > 0) {
            rest->iov_base = (char *)rest->iov_base + str_len;
            rest->iov_len -= str_len;
            pfd.fd = sock;
            pfd.events = POLLOUT;
            poll(&pfd, 1, -1); /* until the socket can take more */
        }
    }
    printf("Write bytes: %zu \n", sent);
    close(sock);
    free(body);
    return 0;
}

void error_handling(char *message)
{
    fputs(message, stderr);
    fputc('\n', stderr);
    exit(1);
}
