module qsplice/tlsclient

go 1.24
