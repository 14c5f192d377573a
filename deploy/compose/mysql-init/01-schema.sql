-- Sample schema for the local stack (docker-compose.yml): a few tables and
-- types the producer and consumer map (README, "Type mapping"). Runs once,
-- on the first start of an empty MySQL volume.
CREATE DATABASE IF NOT EXISTS shop CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_ai_ci;
USE shop;

CREATE TABLE customers (
  id         INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  email      VARCHAR(190) NOT NULL UNIQUE,
  name       VARCHAR(200) NOT NULL,
  country    CHAR(2) CHARACTER SET latin1 NOT NULL,
  tier       ENUM('free', 'pro', 'enterprise') NOT NULL DEFAULT 'free',
  tags       SET('newsletter', 'beta', 'vip') NOT NULL DEFAULT '',
  profile    JSON NULL,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
);

CREATE TABLE orders (
  id          BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  customer_id INT UNSIGNED NOT NULL,
  status      VARCHAR(20) NOT NULL,
  total       DECIMAL(12, 2) NOT NULL,
  discount    DECIMAL(65, 30) NULL,
  flags       BIT(8) NOT NULL DEFAULT b'0',
  ordered_on  DATE NOT NULL,
  ship_window TIME NULL,
  note        TEXT NULL,
  KEY (customer_id)
);

-- A composite primary key.
CREATE TABLE order_items (
  order_id BIGINT UNSIGNED NOT NULL,
  line     SMALLINT NOT NULL,
  sku      VARCHAR(64) NOT NULL,
  quantity INT NOT NULL,
  price    DECIMAL(10, 2) NOT NULL,
  weight   DOUBLE NULL,
  PRIMARY KEY (order_id, line)
);

-- No primary key: written as a changelog (README, "Consumer").
CREATE TABLE audit_log (
  at      TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  actor   VARCHAR(64) NOT NULL,
  action  VARCHAR(64) NOT NULL,
  payload BLOB NULL
);

INSERT INTO customers (email, name, country, tier, tags, profile) VALUES
  ('ada@example.com', 'Ada Lovelace', 'GB', 'pro', 'newsletter,vip', '{"lang": "en"}'),
  ('grace@example.com', 'Grace Hopper', 'US', 'enterprise', 'beta', NULL),
  ('zoe@example.com', 'Zoë Ünicode 🚀', 'DE', 'free', '', '{"lang": "de", "emoji": true}');

INSERT INTO orders (id, customer_id, status, total, discount, flags, ordered_on, ship_window, note) VALUES
  (18446744073709551615, 1, 'paid', 120.50, 0.000000000000000000000000000001, b'00000101', '2024-02-29', '38:15:00', 'unsigned BIGINT max as the key'),
  (2, 2, 'new', 9.99, NULL, b'0', '2025-01-01', NULL, NULL);

INSERT INTO order_items (order_id, line, sku, quantity, price, weight) VALUES
  (18446744073709551615, 1, 'BOOK-1', 2, 40.00, 0.5),
  (18446744073709551615, 2, 'PEN-7', 1, 40.50, NULL),
  (2, 1, 'MUG-3', 1, 9.99, 0.35);

INSERT INTO audit_log (actor, action, payload) VALUES ('init', 'schema loaded', x'00ff');
