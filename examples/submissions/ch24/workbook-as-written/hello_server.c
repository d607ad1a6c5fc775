/* Broken twin: the study group's workbook "Hello, World!" web server, as written.
 * socket, bind, listen, accept, recv, send, close. Its bugs: send() with sizeof() puts
 * the string's NUL on the wire; no Content-Length; one recv() of 1,024 bytes whatever
 * came; every method and path gets the page; close() with the request (or its body)
 * unread, so the kernel resets the connection. */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char *argv[])
{
    int server_fd, client_fd;
    struct sockaddr_in address;
    socklen_t addrlen = sizeof(address);
    char buffer[1024] = {0};
    char response[] = "HTTP/1.1 200 OK\r\n"
                      "Content-Type: text/html\r\n"
                      "\r\n"
                      "<html><body><h1>Hello, World!</h1></body></html>";

    if (argc != 2) {
        printf("Usage : %s <port>\n", argv[0]);
        exit(1);
    }
    signal(SIGPIPE, SIG_IGN);
    server_fd = socket(AF_INET, SOCK_STREAM, 0);
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(atoi(argv[1]));
    if (bind(server_fd, (struct sockaddr *)&address, sizeof(address)) < 0) {
        perror("bind");
        exit(1);
    }
    listen(server_fd, 10);
    while (1) {
        client_fd = accept(server_fd, (struct sockaddr *)&address, &addrlen);
        if (client_fd < 0)
            continue;
        recv(client_fd, buffer, sizeof(buffer), 0);
        send(client_fd, response, sizeof(response), 0);
        close(client_fd);
    }
    return 0;
}
