<?php
// The servers' summed Threads_connected, every 0.2 s until killed, for
// bench/connect_per_request.sh: one connection per server, opened once and kept. A client
// process per sample (the mariadb CLI, 15 a second) took CPU the benchmark's 8 PHP
// processes, the servers and the proxy compete for on this machine's two cores.
// Usage: php threads_connected.php PORT... (as sy_root on 127.0.0.1)
mysqli_report(MYSQLI_REPORT_OFF);
$servers = [];
foreach (array_slice($argv, 1) as $port) {
    $c = @new mysqli('127.0.0.1', 'sy_root', 'sy_root', '', (int)$port);
    if ($c->connect_errno) {
        fwrite(STDERR, "127.0.0.1:$port: $c->connect_error\n");
        exit(1);
    }
    $servers[] = $c;
}
while (true) {
    $n = 0;
    foreach ($servers as $c) {
        $r = $c->query("SHOW GLOBAL STATUS LIKE 'Threads_connected'");
        $n += (int)$r->fetch_row()[1];
    }
    echo "$n\n";
    usleep(200000);
}
