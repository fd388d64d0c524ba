"""Local infrastructure: MariaDB, Kafka broker and Kafka Connect, plus the JDBC sink connector."""
