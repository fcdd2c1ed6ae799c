<?php
// Prints what PHP's PDO (argv[1] = pdo: prepares emulated, PDO's default and what most PHP
// applications send) or mysqli (argv[1] = mysqli: a real prepared statement too) reports for
// what a PHP application does on Switchyard's data port, so that direct and proxied runs can
// be compared line for line (tests/driver_compare.rs): values, column metadata, warnings, an
// error (code, SQLSTATE, message), a transaction, an insert's id read back.
// Usage: php compare_check.php pdo|mysqli PORT   (user acme_app, db wf_acme)
[$_, $driver, $port] = $argv;
$show = fn($v) => $v === null ? 'NULL' : var_export($v, true);
$queries = [
    "SELECT * FROM drv_types ORDER BY id",
    "SELECT 'é🐙 ü' AS s, NULL AS n, 1.50 AS dec_lit, CAST(NULL AS DATETIME) AS nd",
    "SELECT 1/0 AS div0",
    "SHOW WARNINGS",
    "SELECT * FROM no_such_table_drv",
    "SELECT DATABASE(), @@character_set_client, @@collation_connection",
];

if ($driver === 'pdo') {
    $db = new PDO("mysql:host=127.0.0.1;port=$port;dbname=wf_acme;charset=utf8mb4", 'acme_app',
                  'acme_pw', [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
    $rows = function (PDOStatement $st) use ($show) {
        for ($i = 0; $i < $st->columnCount(); $i++) {
            $m = $st->getColumnMeta($i);
            echo " column {$m['name']} {$m['native_type']} {$m['len']} {$m['precision']} ",
                implode(',', $m['flags']), "\n";
        }
        foreach ($st->fetchAll(PDO::FETCH_NUM) as $row) {
            echo " row ", implode(' | ', array_map($show, $row)), "\n";
        }
    };
    $run = function (string $sql, array $params = []) use ($db, $rows) {
        echo "== $sql\n";
        try {
            $st = $db->prepare($sql);
            $st->execute($params);
            $rows($st);
        } catch (PDOException $e) {
            echo " error ", implode(' ', $e->errorInfo ?? [$e->getMessage()]), "\n";
        }
    };
    foreach ($queries as $sql) {
        $run($sql);
    }
    $run("SELECT id, t FROM drv_types WHERE id > ? AND t <> ? ORDER BY id", [0, "it's"]);
    $db->exec("DELETE FROM drv_java");
    echo "== transaction\n";
    $db->beginTransaction();
    echo " in transaction ", var_export($db->inTransaction(), true), "\n";
    $db->prepare("INSERT INTO drv_java (v) VALUES (?)")->execute([7]);
    echo " insert id set ", var_export($db->lastInsertId() > 0, true), "\n";
    $db->commit();
    echo " in transaction ", var_export($db->inTransaction(), true), "\n";
    $run("SELECT v, id = LAST_INSERT_ID() AS own FROM drv_java");
} else {
    mysqli_report(MYSQLI_REPORT_OFF);
    $db = new mysqli('127.0.0.1', 'acme_app', 'acme_pw', 'wf_acme', (int) $port);
    $db->set_charset('utf8mb4');
    $fields = function ($res) {
        foreach ($res->fetch_fields() as $f) {
            echo " column $f->name $f->orgname $f->table $f->type $f->length $f->flags ",
                "$f->decimals $f->charsetnr\n";
        }
    };
    foreach ($queries as $sql) {
        echo "== $sql\n";
        $res = $db->query($sql);
        if ($res === false) {
            echo " error $db->errno $db->sqlstate $db->error\n";
            continue;
        }
        $fields($res);
        while ($row = $res->fetch_row()) {
            echo " row ", implode(' | ', array_map($show, $row)), "\n";
        }
        echo " warnings $db->warning_count\n";
    }
    echo "== prepared\n";
    $st = $db->prepare("SELECT id, t, d, dt FROM drv_types WHERE id > ? ORDER BY id");
    foreach ([0, 1] as $from) {
        $st->bind_param('i', $from);
        $st->execute();
        $res = $st->get_result();
        $fields($res);
        while ($row = $res->fetch_row()) {
            echo " row ", implode(' | ', array_map($show, $row)), "\n";
        }
    }
    $db->query("DELETE FROM drv_java");
    echo "== transaction\n";
    $db->begin_transaction();
    $db->query("INSERT INTO drv_java (v) VALUES (8)");
    echo " insert id set ", var_export($db->insert_id > 0, true), "\n";
    $db->commit();
    $res = $db->query("SELECT v, id = LAST_INSERT_ID() AS own FROM drv_java");
    while ($row = $res->fetch_row()) {
        echo " row ", implode(' | ', array_map($show, $row)), "\n";
    }
    $db->close();
}
echo "done\n";
