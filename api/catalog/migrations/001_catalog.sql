-- Catalog and purchase data. st-api only reads these tables; the platform's commerce services write them.
-- Times are DATETIME(3) in UTC (the pool sets time_zone '+00:00').

CREATE TABLE contents (
  id          VARCHAR(64)  NOT NULL PRIMARY KEY,
  title       VARCHAR(255) NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- One manifest per (protocol, top rung): its ladder stops at `height`, and the token covers its directory.
CREATE TABLE renditions (
  content_id  VARCHAR(64)       NOT NULL,
  protocol    ENUM('hls','dash') NOT NULL,
  height      SMALLINT UNSIGNED NOT NULL,
  path        VARCHAR(512)      NOT NULL,
  PRIMARY KEY (content_id, protocol, height),
  CONSTRAINT renditions_content FOREIGN KEY (content_id) REFERENCES contents (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE device_classes (
  name              VARCHAR(32)        NOT NULL PRIMARY KEY,
  max_height        SMALLINT UNSIGNED  NOT NULL,
  protocols         VARCHAR(32)        NOT NULL COMMENT 'comma-separated: hls,dash',
  default_protocol  ENUM('hls','dash') NOT NULL,
  enabled           BOOLEAN            NOT NULL DEFAULT TRUE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Sell-through (own) and rentals; HD and SD are separate purchases with their own ceiling.
CREATE TABLE purchases (
  id          BIGINT UNSIGNED    NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id     VARCHAR(128)       NOT NULL,
  content_id  VARCHAR(64)        NOT NULL,
  kind        ENUM('own','rent') NOT NULL,
  max_height  SMALLINT UNSIGNED  NOT NULL,
  expires_at  DATETIME(3)        NULL COMMENT 'NULL for sell-through',
  created_at  DATETIME(3)        NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  KEY purchases_user_content (user_id, content_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE subscription_plans (
  id          VARCHAR(32)       NOT NULL PRIMARY KEY,
  name        VARCHAR(128)      NOT NULL,
  max_height  SMALLINT UNSIGNED NOT NULL,
  devices     VARCHAR(255)      NULL COMMENT 'comma-separated device classes; NULL = every device'
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE plan_contents (
  plan_id     VARCHAR(32) NOT NULL,
  content_id  VARCHAR(64) NOT NULL,
  PRIMARY KEY (plan_id, content_id),
  KEY plan_contents_content (content_id),
  CONSTRAINT plan_contents_plan FOREIGN KEY (plan_id) REFERENCES subscription_plans (id),
  CONSTRAINT plan_contents_content FOREIGN KEY (content_id) REFERENCES contents (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE subscriptions (
  user_id     VARCHAR(128) NOT NULL,
  plan_id     VARCHAR(32)  NOT NULL,
  expires_at  DATETIME(3)  NULL,
  PRIMARY KEY (user_id, plan_id),
  CONSTRAINT subscriptions_plan FOREIGN KEY (plan_id) REFERENCES subscription_plans (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
