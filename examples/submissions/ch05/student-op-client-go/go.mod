module opclient

go 1.19
