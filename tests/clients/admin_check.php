<?php
// Logs in to Switchyard's admin port with PHP's mysqli or PDO (argv[1]) and runs the admin
// commands tests/admin_drivers.rs checks, printing each answer in the format it parses
// (see admin_check.py).
mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
$port = (int) getenv('SY_ADMIN_PORT');
$user = getenv('SY_ADMIN_USER');
$pass = getenv('SY_ADMIN_PASSWORD');
$tenant = getenv('SY_TENANT');
$stmts = ["SHOW BACKENDS", "PAUSE TENANT $tenant TIMEOUT 5", "SHOW TENANTS", "RESUME TENANT $tenant"];
$cell = fn($v) => $v === null ? '\N' : (string) $v;

if ($argv[1] === 'mysqli') {
    $db = new mysqli('127.0.0.1', $user, $pass, '', $port);
    echo "driver mysqli ", $db->client_info, "\n";
    foreach ($stmts as $sql) {
        $res = $db->query($sql);
        echo "== $sql\n";
        echo implode("\t", array_merge(['columns'], array_map(fn($f) => $f->name, $res->fetch_fields()))), "\n";
        while ($row = $res->fetch_row()) {
            echo implode("\t", array_merge(['row'], array_map($cell, $row))), "\n";
        }
    }
    $db->close();
} else {
    $db = new PDO("mysql:host=127.0.0.1;port=$port", $user, $pass,
                  [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
    echo "driver PDO ", $db->getAttribute(PDO::ATTR_CLIENT_VERSION), "\n";
    foreach ($stmts as $sql) {
        $res = $db->query($sql);
        echo "== $sql\n";
        $names = ['columns'];
        for ($i = 0; $i < $res->columnCount(); $i++) {
            $names[] = $res->getColumnMeta($i)['name'];
        }
        echo implode("\t", $names), "\n";
        while ($row = $res->fetch(PDO::FETCH_NUM)) {
            echo implode("\t", array_merge(['row'], array_map($cell, $row))), "\n";
        }
    }
}
echo "done\n";
