<?php
// One worker of the connect-per-request benchmark (bench/connect_per_request.sh): until
// the deadline, connect and log in with mysqli, run one point select, close. Prints
// "<requests> <errors>". PHP's mysqli is what the products behind Switchyard open per web
// request.
[$_, $port, $secs] = $argv + [null, '3306', '5'];
mysqli_report(MYSQLI_REPORT_OFF);
$end = microtime(true) + (float)$secs;
$ok = 0;
$err = 0;
while (microtime(true) < $end) {
    $c = @new mysqli('127.0.0.1', 'sbtest', 'sbtest', 'sbtest', (int)$port);
    if ($c->connect_errno) {
        $err++;
        continue;
    }
    $r = $c->query('SELECT c FROM sbtest1 WHERE id = ' . mt_rand(1, 10000));
    if ($r === false) {
        $err++;
    } else {
        $r->free();
        $ok++;
    }
    $c->close();
}
echo "$ok $err\n";
