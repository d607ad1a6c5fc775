module echothrserv

go 1.19
