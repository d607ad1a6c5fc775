/* news_sender.c -- the book's multicast sender (ch14), and, built with -DBROADCAST, its
 * broadcast sender (news_sender_brd.c): the two differ only in the option they set.
 * The book's bug fixed: it loops on while(!feof(fp)), and feof() turns true only after a
 * read has failed, so its last fgets() fails, leaves buf as it was, and the last line is
 * sent twice. Here the loop ends when fgets() returns NULL. The news file is argv[3]
 * (the book opens news.txt); the book's sleep(2) between lines, pacing the news, is
 * left out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#define TTL 64
#define BUF_SIZE 1024
void error_handling(char *message);

int main(int argc, char *argv[])
{
	int send_sock;
	struct sockaddr_in mul_adr;
	FILE *fp;
	char buf[BUF_SIZE];
	if (argc != 3 && argc != 4) {
#ifdef BROADCAST
		printf("Usage : %s <Broadcast IP> <PORT> [news file]\n", argv[0]);
#else
		printf("Usage : %s <GroupIP> <PORT> [news file]\n", argv[0]);
#endif
		exit(1);
	}

	send_sock = socket(PF_INET, SOCK_DGRAM, 0);
	memset(&mul_adr, 0, sizeof(mul_adr));
	mul_adr.sin_family = AF_INET;
	mul_adr.sin_addr.s_addr = inet_addr(argv[1]);   /* Multicast (or broadcast) IP */
	mul_adr.sin_port = htons(atoi(argv[2]));        /* Multicast Port */

#ifdef BROADCAST
	int so_brd = 1;
	setsockopt(send_sock, SOL_SOCKET,
		SO_BROADCAST, (void *)&so_brd, sizeof(so_brd));
#else
	int time_live = TTL;
	setsockopt(send_sock, IPPROTO_IP,
		IP_MULTICAST_TTL, (void *)&time_live, sizeof(time_live));
#endif
	if ((fp = fopen(argc == 4 ? argv[3] : "news.txt", "r")) == NULL)
		error_handling("fopen() error");

	while (fgets(buf, BUF_SIZE, fp) != NULL) {   /* Broadcasting */
		if (sendto(send_sock, buf, strlen(buf),
			0, (struct sockaddr *)&mul_adr, sizeof(mul_adr)) == -1)
			error_handling("sendto() error");
	}
	fclose(fp);
	close(send_sock);
	return 0;
}

void error_handling(char *message)
{
	perror(message);
	exit(1);
}
