/* op_client.c -- the book's ch05 op_client.c: prompts for the operands and
 * the operator, sends count(1) + operands(4 each, as they lie in memory:
 * little-endian here) + operator(1), reads the 4-byte result.
 * Fixes: the result is read in a loop until all 4 bytes are in, scanf checked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#define BUF_SIZE 1024
#define RLT_SIZE 4
#define OPSZ 4
void error_handling(char *message);

int main(int argc, char *argv[])
{
	int sock;
	char opmsg[BUF_SIZE];
	int result, opnd_cnt, i, got, n;
	struct sockaddr_in serv_adr;

	if (argc != 3) {
		printf("Usage : %s <IP> <port>\n", argv[0]);
		exit(1);
	}

	sock = socket(PF_INET, SOCK_STREAM, 0);
	if (sock == -1)
		error_handling("socket() error");

	memset(&serv_adr, 0, sizeof(serv_adr));
	serv_adr.sin_family = AF_INET;
	serv_adr.sin_addr.s_addr = inet_addr(argv[1]);
	serv_adr.sin_port = htons(atoi(argv[2]));

	if (connect(sock, (struct sockaddr *)&serv_adr, sizeof(serv_adr)) == -1)
		error_handling("connect() error!");
	else
		puts("Connected...........");

	fputs("Operand count: ", stdout);
	fflush(stdout);
	if (scanf("%d", &opnd_cnt) != 1 || opnd_cnt < 1 || opnd_cnt > 100)
		error_handling("bad operand count");
	opmsg[0] = (char)opnd_cnt;

	for (i = 0; i < opnd_cnt; i++) {
		printf("Operand %d: ", i + 1);
		fflush(stdout);
		if (scanf("%d", (int *)&opmsg[i * OPSZ + 1]) != 1)
			error_handling("bad operand");
	}
	fgetc(stdin);
	fputs("Operator: ", stdout);
	fflush(stdout);
	if (scanf("%c", &opmsg[opnd_cnt * OPSZ + 1]) != 1)
		error_handling("no operator");
	if (write(sock, opmsg, opnd_cnt * OPSZ + 2) == -1)
		error_handling("write() error");

	got = 0;
	while (got < RLT_SIZE) {
		n = read(sock, (char *)&result + got, RLT_SIZE - got);
		if (n == -1)
			error_handling("read() error");
		if (n == 0)
			error_handling("server closed before the result");
		got += n;
	}

	printf("Operation result: %d \n", result);
	close(sock);
	return 0;
}

void error_handling(char *message)
{
	fputs(message, stderr);
	fputc('\n', stderr);
	exit(1);
}
