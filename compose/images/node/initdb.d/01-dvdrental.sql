-- A small DVD-rental-style dataset (the agenda's "rental and payment insertions"):
-- stores, customers, films, inventory, and the rentals and payments the load writer adds.
-- Every rental the writer inserts carries op_id, the id the writer's ledger records,
-- so a verifier can tell which acknowledged writes survived a failover.
CREATE TABLE store    (store_id int PRIMARY KEY, city text NOT NULL);
CREATE TABLE customer (customer_id int PRIMARY KEY, store_id int NOT NULL REFERENCES store,
                       name text NOT NULL, email text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE film     (film_id int PRIMARY KEY, title text NOT NULL, rental_rate numeric(4,2) NOT NULL);
CREATE TABLE inventory(inventory_id int PRIMARY KEY, film_id int NOT NULL REFERENCES film,
                       store_id int NOT NULL REFERENCES store);
CREATE TABLE rental   (rental_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                       op_id bigint UNIQUE,
                       inventory_id int NOT NULL REFERENCES inventory,
                       customer_id int NOT NULL REFERENCES customer,
                       rental_date timestamptz NOT NULL DEFAULT now());
CREATE TABLE payment  (payment_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                       rental_id bigint NOT NULL REFERENCES rental,
                       customer_id int NOT NULL REFERENCES customer,
                       amount numeric(5,2) NOT NULL,
                       payment_date timestamptz NOT NULL DEFAULT now());

INSERT INTO store VALUES (1, 'Lethbridge'), (2, 'Woodridge');
INSERT INTO customer (customer_id, store_id, name, email)
  SELECT i, 1 + i % 2, 'customer ' || i, 'customer' || i || '@example.org' FROM generate_series(1, 600) i;
INSERT INTO film SELECT i, 'Film ' || i, 0.99 + (i % 5) FROM generate_series(1, 1000) i;
INSERT INTO inventory SELECT i, 1 + i % 1000, 1 + i % 2 FROM generate_series(1, 4500) i;
-- History: rentals and payments with no op_id (not the writer's).
INSERT INTO rental (inventory_id, customer_id, rental_date)
  SELECT 1 + i % 4500, 1 + i % 600, now() - make_interval(hours => i) FROM generate_series(1, 16000) i;
INSERT INTO payment (rental_id, customer_id, amount, payment_date)
  SELECT rental_id, customer_id, 2.99, rental_date FROM rental;
ANALYZE;
