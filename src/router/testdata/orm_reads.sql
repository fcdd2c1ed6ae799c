select u1_0.id,u1_0.email,u1_0.name from users u1_0 where year(u1_0.created_at)=2024 and weekofyear(u1_0.created_at)=10 and dayofweek(u1_0.created_at) in (2,3)
select u1_0.id,concat(coalesce(u1_0.name,''),' <',u1_0.email,'>') from users u1_0 where locate('@example.com',lower(u1_0.email))>0 limit 0,20
select cast(u1_0.id as char),character_length(u1_0.name),substring(u1_0.name,1,3),trim(both ' ' from u1_0.name) from users u1_0 where cast(u1_0.score as signed)>10
select (second(o1_0.created_at)+microsecond(o1_0.created_at)/1e6),unix_timestamp(o1_0.created_at),dayofmonth(o1_0.created_at),dayofyear(o1_0.created_at) from orders o1_0
select o1_0.id,timestampdiff(day,o1_0.created_at,o1_0.shipped_at) from orders o1_0 where timestampadd(microsecond,86400000000,o1_0.created_at)<current_timestamp(6) and o1_0.created_at>=timestamp '2024-01-01 00:00:00'
select date_format(o1_0.created_at,'%Y-%m-%d'),datediff(current_date,o1_0.created_at) from orders o1_0 where o1_0.created_at<date '2024-06-30'
select truncate(o1_0.total,1),round(o1_0.total,0),floor(o1_0.total),ceiling(o1_0.total),abs(sign(o1_0.total)),mod(o1_0.id,7),sqrt(o1_0.total),power(o1_0.total,2),ln(o1_0.total+1),exp(1),log10(o1_0.total+1),log2(o1_0.total+1),cot(1),degrees(1),radians(90),cast(pi() as double) from orders o1_0
select left(u1_0.name,2),right(u1_0.name,2),lpad(u1_0.name,10,' '),rpad(u1_0.name,10,'.'),insert(u1_0.name,1,3,'abc'),repeat('x',3),space(2),reverse(u1_0.name),replace(u1_0.name,'a','b'),upper(u1_0.name),ascii(u1_0.name),instr(u1_0.name,'a') from users u1_0
select sysdate(6),localtime,localtimestamp,utc_timestamp,utc_date,now(6),curdate(),curtime()
select p1_0.user_id,group_concat(p1_0.title order by p1_0.created_at desc separator ', ') from posts p1_0 group by 1
select o1_0.id,row_number() over(partition by o1_0.user_id order by o1_0.created_at),rank() over(order by o1_0.total desc),lag(o1_0.total,1) over(order by o1_0.created_at),first_value(o1_0.total) over(partition by o1_0.user_id order by o1_0.created_at) from orders o1_0
select median(o1_0.total) over (),percentile_cont(0.9) within group (order by o1_0.total) over () from orders o1_0 limit 1
select u1_0.id,json_unquote(nullif(json_extract(u1_0.meta,'$.plan'),'null')),cast(json_unquote(nullif(json_extract(u1_0.meta,'$.seats'),'null')) as signed) from users u1_0 where json_contains_path(u1_0.meta,'one','$.plan')
select concat('[',group_concat(nullif(json_extract(json_array(p1_0.title),'$[0]'),'null') separator ','),']') from posts p1_0 where p1_0.user_id=1
select u1_0.id,t1_0.v from users u1_0 join json_table(u1_0.options,'$[*]' columns(v varchar(255) path '$')) t1_0 where u1_0.id=1
with recursive gs(v) as (select 1 union all select v+1 from gs where v<10) select v from gs
select p1_0.id,st_distance(p1_0.location,st_geomfromtext('POINT(1 1)',0)) from places p1_0 where st_within(p1_0.location,st_geomfromtext('POLYGON((0 0,0 10,10 10,10 0,0 0))',0))
select unhex(md5(u1_0.email)),unhex(sha2(u1_0.email,256)),hex(u1_0.uuid),bit_and(u1_0.flags),bit_or(u1_0.flags) from users u1_0
SELECT u0_.id AS id_0, u0_.name AS name_1 FROM users u0_ WHERE LOCATE('x', u0_.name) > 0 AND CHAR_LENGTH(u0_.name) > 3 AND DATEDIFF(u0_.created_at, CURRENT_DATE) < 30
SELECT u0_.id AS id_0 FROM users u0_ WHERE u0_.created_at > DATE_SUB(CURRENT_TIMESTAMP, INTERVAL 7 DAY) AND DATE_ADD(u0_.created_at, INTERVAL 1 MONTH) < '2025-01-01' AND SUBSTRING(u0_.name FROM 1 FOR 3) = 'Bob' AND TRIM(u0_.email) <> '' AND MOD(u0_.id, 2) = 0
SELECT u0_.id AS id_0, (SELECT COUNT(*) FROM posts p1_ WHERE p1_.user_id = u0_.id) AS sclr_1 FROM users u0_ WHERE (u0_.flags & 4) > 0 ORDER BY sclr_1 DESC
SELECT DATE_FORMAT(o0_.created_at, '%Y-%m') AS sclr_0, GROUP_CONCAT(DISTINCT o0_.status ORDER BY o0_.status ASC SEPARATOR '|') AS sclr_1, SUM(IFNULL(o0_.total, 0)) AS sclr_2, IF(COUNT(o0_.id) > 10, 'busy', 'quiet') AS sclr_3 FROM orders o0_ GROUP BY sclr_0 ORDER BY FIELD(sclr_0, '2024-02', '2024-01') DESC
SELECT c.COLUMN_NAME AS field, IF(c.COLUMN_TYPE = 'longtext' AND EXISTS(SELECT * FROM information_schema.CHECK_CONSTRAINTS i_c WHERE i_c.CONSTRAINT_SCHEMA = 'app' AND i_c.TABLE_NAME = c.TABLE_NAME AND i_c.CHECK_CLAUSE = CONCAT('json_valid(`', c.COLUMN_NAME, '`)')), 'json', c.COLUMN_TYPE) AS type, c.IS_NULLABLE AS `null`, c.COLUMN_KEY AS `key`, c.COLUMN_DEFAULT AS `default`, c.EXTRA, c.COLUMN_COMMENT AS comment, c.CHARACTER_SET_NAME AS characterset, c.COLLATION_NAME AS collation FROM information_schema.COLUMNS c INNER JOIN information_schema.TABLES t ON t.TABLE_NAME = c.TABLE_NAME WHERE c.TABLE_SCHEMA = 'app' AND t.TABLE_SCHEMA = 'app' AND t.TABLE_TYPE = 'BASE TABLE' AND t.TABLE_NAME = 'users' ORDER BY ORDINAL_POSITION
SELECT DATABASE()
select * from `users` where date(`created_at`) = '2024-05-01' and year(`created_at`) = 2024 and month(`created_at`) = 5 and day(`created_at`) = 1 and time(`created_at`) >= '09:00:00' and `users`.`deleted_at` is null
select * from `users` where json_unquote(json_extract(`meta`, '$."billing"."plan"')) = 'pro' order by json_unquote(json_extract(`meta`, '$."billing"."seats"')) desc
select json_value(`meta`, '$."billing"."plan"') as `plan` from `users` where json_value(`meta`, '$."billing"."plan"') = 'pro'
select * from `users` where json_contains(`options`, '"en"', '$."languages"') and ifnull(json_contains_path(`meta`, 'one', '$."billing"."vat"'), 0) and json_length(`options`, '$."languages"') > 1
select * from `users` where json_overlaps(`options`, '["en","fr"]') and (json_extract(`meta`, '$."deleted"') is null OR json_type(json_extract(`meta`, '$."deleted"')) = 'NULL')
select * from `posts` where match (`title`, `body`) against ('database' in natural language mode) order by RAND() limit 5
select exists(select * from `users` where `email` = 'a@example.com') as `exists`
select * from (select *, row_number() over (partition by `user_id` order by `created_at` desc) as `laravel_row` from `posts` where `posts`.`user_id` in (1, 2, 3)) as `laravel_table` where `laravel_row` <= 3 order by `laravel_row`
select index_name as `name`, group_concat(column_name order by seq_in_index) as `columns`, index_type as `type`, not non_unique as `unique` from information_schema.statistics where table_schema = schema() and table_name = 'users' group by index_name, index_type, non_unique
select *, ST_Distance_Sphere(point(`lng`, `lat`), point(2.3522, 48.8566)) as `distance` from `places` having `distance` <= 5000 order by `distance` asc
SELECT id, name FROM places WHERE MBRContains(ST_GeomFromText('POLYGON((2 48,2 49,3 49,3 48,2 48))'), location) AND ST_Distance_Sphere(location, POINT(2.35, 48.85)) < 10000
SELECT id FROM places WHERE ST_Contains(polygon(linestring(point(0,0), point(0,90), point(90,90), point(90,0), point(0,0))), location)
SELECT CAST(DATE_FORMAT(CONVERT_TZ(`orders`.`created_at`, 'UTC', 'Europe/Paris'), '%Y-%m-01 00:00:00') AS DATETIME) AS `month`, COUNT(`orders`.`id`) AS `n` FROM `orders` GROUP BY 1 ORDER BY NULL
SELECT WEEK(`orders`.`created_at`, 3) AS `w`, TRUNCATE(YEARWEEK(`orders`.`created_at`, 3), -2) / 100 AS `iy`, DAYOFWEEK(`orders`.`created_at`) AS `wd`, WEEKDAY(`orders`.`created_at`) + 1 AS `iwd`, EXTRACT(QUARTER FROM `orders`.`created_at`) AS `q` FROM `orders`
SELECT CAST(DATE_FORMAT(MAKEDATE(YEAR(`orders`.`created_at`), 1) + INTERVAL QUARTER(`orders`.`created_at`) QUARTER - INTERVAL 1 QUARTER, '%Y-%m-01 00:00:00') AS DATETIME) AS `q`, CAST(DATE_FORMAT(DATE_SUB(`orders`.`created_at`, INTERVAL WEEKDAY(`orders`.`created_at`) DAY), '%Y-%m-%d 00:00:00') AS DATETIME) AS `wk` FROM `orders`
SELECT `users`.`id` FROM `users` WHERE (JSON_UNQUOTE(JSON_EXTRACT(`users`.`meta`, '$."plan"')) = 'pro' AND JSON_CONTAINS_PATH(`users`.`meta`, 'one', '$."billing"') AND JSON_CONTAINS(`users`.`meta`, '{"beta": true}') AND JSON_EXTRACT(`users`.`meta`, '$."seats"') = JSON_EXTRACT('3', '$'))
SELECT CONCAT_WS('', `users`.`name`, CONCAT_WS('', ' ', `users`.`email`)) AS `label`, COALESCE(`users`.`name`, `users`.`email`) AS `n`, GREATEST(`users`.`score`, 0) AS `g`, LEAST(`users`.`score`, 100) AS `l`, NULLIF(`users`.`status`, '') AS `s`, CURRENT_TIMESTAMP(6) AS `now` FROM `users`
SELECT CAST(`users`.`score` AS signed integer) AS `i`, (`users`.`score` + 0.0) AS `f`, LPAD(`users`.`name`, 10, '0') AS `p`, SHA2(`users`.`email`, 224) AS `h`, MD5(`users`.`email`) AS `m`, CHAR_LENGTH(`users`.`name`) AS `len`, INSTR(`users`.`name`, 'a') AS `pos`, ORD(`users`.`name`) AS `o`, REPEAT(`users`.`name`, 2) AS `r` FROM `users`
SELECT `orders`.`id`, RANK() OVER (PARTITION BY `orders`.`user_id` ORDER BY `orders`.`total` DESC) AS `rk`, NTILE(4) OVER (ORDER BY `orders`.`total`) AS `quartile`, PERCENT_RANK() OVER (ORDER BY `orders`.`total`) AS `pr`, CUME_DIST() OVER (ORDER BY `orders`.`total`) AS `cd`, NTH_VALUE(`orders`.`total`, 2) OVER (ORDER BY `orders`.`total`) AS `second`, LEAD(`orders`.`id`, 1) OVER (ORDER BY `orders`.`id`) AS `next_id` FROM `orders`
SELECT `orders`.`id`, TIMESTAMPDIFF(MICROSECOND, `orders`.`created_at`, `orders`.`shipped_at`) AS `took` FROM `orders` WHERE (`orders`.`created_at` + INTERVAL 3600000000 MICROSECOND) < `orders`.`shipped_at`
SELECT `events`.`id`, CAST((TIME_TO_SEC(`events`.`ends_at`) - TIME_TO_SEC(`events`.`starts_at`)) * 1000000 AS SIGNED) AS `dur` FROM `events`
SELECT `users`.`id` FROM `users` WHERE `users`.`name` REGEXP BINARY '^A[a-z]+' AND `users`.`email` REGEXP '@example'
SELECT VERSION(), @@sql_mode, @@default_storage_engine, @@sql_auto_is_null, @@lower_case_table_names, CONVERT_TZ('2001-01-01 01:00:00', 'UTC', 'UTC') IS NOT NULL
SELECT table_name, table_type, table_comment FROM information_schema.tables WHERE table_schema = DATABASE()
SELECT `places`.`id`, ST_AsBinary(`places`.`location`) FROM `places` WHERE (ST_Contains(`places`.`area`, ST_GeomFromText('POINT (2.35 48.85)', 4326)) OR MBRWithin(`places`.`location`, ST_GeomFromText('POLYGON ((0 0, 0 90, 90 90, 90 0, 0 0))', 4326))) ORDER BY ST_Distance_Sphere(`places`.`location`, ST_GeomFromText('POINT (2.35 48.85)', 4326)) ASC
SELECT users.id, users.name FROM users WHERE lower(users.email) LIKE lower(concat('%', 'example', '%')) AND users.name LIKE concat('Bo', '%')
SELECT CASE JSON_EXTRACT(users.meta, '$."plan"') WHEN 'null' THEN NULL ELSE JSON_UNQUOTE(JSON_EXTRACT(users.meta, '$."plan"')) END AS anon_1, CASE JSON_EXTRACT(users.meta, '$."seats"') WHEN 'null' THEN NULL ELSE CAST(JSON_EXTRACT(users.meta, '$."seats"') AS SIGNED INTEGER) END AS anon_2, JSON_EXTRACT(users.meta, '$."ratio"')+0.0000000000000000000000 AS anon_3 FROM users
SELECT date_format(orders.created_at, '%Y-%m') AS ym, orders.status, count(orders.id) AS count_1, now() AS now_1, SYSDATE() AS sysdate_1 FROM orders GROUP BY date_format(orders.created_at, '%Y-%m'), orders.status WITH ROLLUP
SELECT posts.user_id, group_concat(posts.title SEPARATOR ', ') AS aggregate_strings_1 FROM posts GROUP BY posts.user_id ORDER BY rand()
SELECT REGEXP_REPLACE(users.name, CONCAT('(?', 'i', ')', 'bob'), 'Robert') AS anon_1 FROM users
SELECT users.id FROM users WHERE users.id IN (SELECT 1 FROM (SELECT 1) as _empty_set WHERE 1!=1)
SELECT table_name FROM information_schema.tables WHERE table_schema = database() AND table_name = 'users' AND table_type = 'BASE TABLE'
SELECT CONVERT_TZ(DATE_FORMAT(CONVERT_TZ(`orders`.`created_at`, '+00:00', 'America/New_York'), '%Y-%m-%d 00:00:00'), 'America/New_York', '+00:00') AS day, COUNT(*) AS count_all FROM `orders` WHERE `orders`.`created_at` IS NOT NULL GROUP BY CONVERT_TZ(DATE_FORMAT(CONVERT_TZ(`orders`.`created_at`, '+00:00', 'America/New_York'), '%Y-%m-%d 00:00:00'), 'America/New_York', '+00:00')
SELECT `posts`.* FROM `posts` WHERE `posts`.`type` IN ('c', 'b', 'a') AND NOT (`posts`.`title` <=> NULL) ORDER BY FIELD(`posts`.`type`, 'a', 'b', 'c') DESC
SELECT `id`, `name`, DATE_FORMAT(`created_at`, '%Y-%m') AS `month` FROM `users` AS `User` WHERE json_unquote(json_extract(`User`.`meta`,'$.plan')) = 'pro' ORDER BY RAND() LIMIT 10;
SELECT `id` FROM `users` AS `User` WHERE json_compact(json_extract(`User`.`meta`,'$.beta')) = 'true';
SELECT COUNT(DISTINCT(CONCAT(`Order`.`id`, "|;|", `Order`.`user_id`))) AS `cnt` FROM `orders` `Order`
SELECT `Place`.`id` AS `Place_id`, ST_AsText(`Place`.`location`) AS `Place_location` FROM `places` `Place` WHERE `Place`.`name` LIKE 'Par%'
SELECT SCHEMA() AS `schema_name`
SELECT /*+ MAX_EXECUTION_TIME(1000) */ `User`.`id` AS `User_id` FROM `users` `User`
select json_unquote(json_extract(`meta`, '$.plan')) as `plan` from `users` where json_contains(`options`,'["en"]')
SELECT `app`.`users`.`id`, `app`.`users`.`email` FROM `app`.`users` WHERE (JSON_CONTAINS(JSON_EXTRACT(`app`.`users`.`options`, '$.languages'), '["en"]') AND JSON_TYPE(JSON_EXTRACT(`app`.`users`.`options`, '$.languages')) = 'ARRAY') LIMIT 10 OFFSET 0
select `app`.`users`.`id`, `app`.`users`.`name`, timestampdiff(second, `app`.`users`.`created_at`, current_timestamp()) from `app`.`users` where `app`.`users`.`created_at` >= date_add(timestamp '2024-01-01 00:00:00', interval 1 day) order by `app`.`users`.`id` limit 10
select `u`.`id`, (select coalesce(json_merge_preserve('[]', json_arrayagg(json_array(`p`.`id`, `p`.`title`))), json_array()) from `app`.`posts` as `p` where `p`.`user_id` = `u`.`id`) as `posts` from `app`.`users` as `u`
select if(`u`.`name` is not null, 'named', 'anon'), elt(2, 'a', 'b', 'c'), cast(`u`.`score` as decimal(10, 2)), char_length(`u`.`name`) from `app`.`users` as `u`
SELECT UNIX_TIMESTAMP(ts) DIV 300 * 300 AS "time", host AS metric, avg(value) AS value FROM metrics WHERE ts BETWEEN FROM_UNIXTIME(1715000000) AND FROM_UNIXTIME(1715086400) GROUP BY 1, 2 ORDER BY 1
SELECT cast(cast(UNIX_TIMESTAMP(ts)/(300) as signed)*300 as signed) AS time_sec, max(value) AS value FROM metrics WHERE ts BETWEEN DATE_ADD(FROM_UNIXTIME(0), INTERVAL -3600 SECOND) AND FROM_UNIXTIME(1715086400) GROUP BY 1 ORDER BY 1
SELECT str_to_date(concat(date_format(`app`.`orders`.`created_at`, '%Y-%m'), '-01'), '%Y-%m-%d') AS `created_at`, str_to_date(concat(yearweek(`app`.`orders`.`created_at`), ' Sunday'), '%X%V %W') AS `week`, str_to_date(concat(year(`app`.`orders`.`created_at`), '-', ((quarter(`app`.`orders`.`created_at`) * 3) - 2), '-01'), '%Y-%m-%d') AS `quarter`, makedate(year(`app`.`orders`.`created_at`), 1) AS `year`, count(*) AS `count` FROM `app`.`orders` GROUP BY 1, 2, 3, 4 ORDER BY 1 ASC
SELECT @@GLOBAL.time_zone AS global_tz, @@system_time_zone AS system_tz, time_format(timediff(now(), convert_tz(now(), @@GLOBAL.time_zone, '+00:00')), '%H:%i') AS `offset`
SELECT timestampdiff(day, `app`.`orders`.`created_at`, convert_tz(`app`.`orders`.`shipped_at`, 'UTC', 'Europe/Berlin')) AS `days`, regexp_substr(`app`.`users`.`email`, '@.+$') AS `domain`, char_length(`app`.`users`.`name`) AS `len` FROM `app`.`orders` LEFT JOIN `app`.`users` ON `app`.`orders`.`user_id` = `app`.`users`.`id` LIMIT 2000
SELECT TRUE AS _ FROM `app`.`users` WHERE 1 <> 1 LIMIT 0
SELECT CURRENT_USER();
SELECT ST_ASTEXT(`location`) AS `location`, ST_SRID(`location`) AS `srid` FROM (SELECT * FROM `places` LIMIT 0, 25) AS `temp_gis`
SELECT `id`, `name`, HEX(`uuid`) AS `uuid`, BIN(`flags` + 0) AS `flags` FROM `users` LIMIT 50
SELECT `id`, ST_AsWKT(`location`) AS `location` FROM `places` LIMIT 50
SELECT id, name, IFNULL(score, 0) AS score, DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s') AS created FROM users WHERE name LIKE CONCAT('%', 'bob', '%') AND FIND_IN_SET('vip', tags) > 0 ORDER BY created_at DESC LIMIT 0, 10
