module qsplice/tlsserver

go 1.25
