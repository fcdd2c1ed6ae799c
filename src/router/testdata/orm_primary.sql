select nextval(order_seq)
select nextval(`order_seq`)
SELECT `next_doc_number`(5) AS `next_doc_number`;
SELECT `next_doc_number`(5)
select `app`.`next_doc_number`(5)
SELECT id, next_doc_number(id) AS doc FROM orders WHERE status = 'paid'
SELECT GET_LOCK('3079113212412474210', 0)
SELECT RELEASE_LOCK('3079113212412474210')
SELECT LAST_INSERT_ID()
select u1_0.id,u1_0.name from users u1_0 where u1_0.id=1 for update
