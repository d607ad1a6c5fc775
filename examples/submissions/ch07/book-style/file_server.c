/* The book's file_server.c (chapter 7), made correct (FIX): it takes the file to send
 * as an argument and checks that it opened and is a regular file, prints only the bytes
 * the client sent, and ignores SIGPIPE. It serves one client and exits, as the book's
 * does. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUF_SIZE 30
void error_handling(char *message);

int main(int argc, char *argv[])
{
    int serv_sd, clnt_sd;
    FILE *fp;
    char buf[BUF_SIZE];
    int read_cnt, fd;
    struct stat st;
    struct sockaddr_in serv_adr, clnt_adr;
    socklen_t clnt_adr_sz;

    if (argc != 3) {
        printf("Usage: %s <port> <file>\n", argv[0]);
        exit(1);
    }
    /* FIX: the book never checks, and crashes at the first fread(). And only a regular
     * file will do: a directory opens, but every read() fails (EISDIR), so the client
     * would get 0 bytes and a clean end of stream, as if the file were empty; a FIFO's
     * open() waits until someone opens it for writing. So: open with O_NONBLOCK (the
     * open itself cannot wait; on a regular file the flag changes nothing), ask fstat()
     * what was opened, and refuse anything else before listening. */
    fd = open(argv[2], O_RDONLY | O_NONBLOCK);
    if (fd == -1)
        error_handling("open() error");
    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "%s is not a regular file\n", argv[2]);
        exit(1);
    }
    fp = fdopen(fd, "rb");
    signal(SIGPIPE, SIG_IGN); /* FIX */

    serv_sd = socket(PF_INET, SOCK_STREAM, 0);
    memset(&serv_adr, 0, sizeof(serv_adr));
    serv_adr.sin_family = AF_INET;
    serv_adr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    serv_adr.sin_port = htons(atoi(argv[1]));
    if (bind(serv_sd, (struct sockaddr *)&serv_adr, sizeof(serv_adr)) == -1)
        error_handling("bind() error");
    listen(serv_sd, 5);

    clnt_adr_sz = sizeof(clnt_adr);
    clnt_sd = accept(serv_sd, (struct sockaddr *)&clnt_adr, &clnt_adr_sz);

    while (1) {
        read_cnt = fread((void *)buf, 1, BUF_SIZE, fp);
        if (read_cnt < BUF_SIZE) {
            write(clnt_sd, buf, read_cnt);
            break;
        }
        write(clnt_sd, buf, BUF_SIZE);
    }

    shutdown(clnt_sd, SHUT_WR);
    read_cnt = read(clnt_sd, buf, BUF_SIZE - 1);
    if (read_cnt < 0)
        read_cnt = 0;
    buf[read_cnt] = 0; /* FIX: terminate what was received, print nothing past it */
    printf("Message from client: %s \n", buf);

    fclose(fp);
    close(clnt_sd);
    close(serv_sd);
    return 0;
}

void error_handling(char *message)
{
    fputs(message, stderr);
    fputc('\n', stderr);
    exit(1);
}
