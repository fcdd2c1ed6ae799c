<?php
// PHP requests as the users' apps make them: connect with mysqli, one multi_query of two
// reads, and (in a transaction, so the primary answers) the server thread of the session's
// primary connection, then close. mysqlnd turns multi-statements on for the query and
// leaves them on when it succeeds. Prints per request "ok <result sets> <thread id>".
// Environment: SY_PORT, SY_USER, SY_PASSWORD, SY_DB, SY_REQUESTS.
mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
$port = (int) getenv('SY_PORT');
for ($i = 0; $i < (int) getenv('SY_REQUESTS'); $i++) {
    $c = new mysqli('127.0.0.1', getenv('SY_USER'), getenv('SY_PASSWORD'), getenv('SY_DB'), $port);
    $sets = 0;
    $c->multi_query('SELECT 1; SELECT 2');
    do {
        if ($r = $c->store_result()) {
            $sets++;
            $r->free();
        }
    } while ($c->more_results() && $c->next_result());
    $c->begin_transaction();
    $thread = $c->query('SELECT CONNECTION_ID()')->fetch_row()[0];
    $c->commit();
    $c->close();
    echo "ok $sets $thread\n";
}
