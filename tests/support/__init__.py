"""The helpers the tests share, one module per topic (tests import them from here, never from a
conftest or another test module; the test doubles are in tests/doubles.py):

- waiting: wait_until, wait_for_row, wait_for_user_rows (an outcome, a row, a user's rows)
- tables: the stack's tables (user_rows, add_product, stock_of)
- products: the products' change stream (product_records, by_key, wait_in_views: a product in every
  Order instance's view, PriceWriter, private_source, as_root)
- ledger: both sides of a product (product_ledger, sync_ledger, settled_ledger, table_and_stock)
- kafka: an acknowledged Producer, read_topic, consumer_lag (on an address, or a secured cluster's
  client configuration: kafka_config)
- sinks: private copies of the sink connector (create_private_sink, remove_private_sink)
- load: OrderLoad, client threads placing orders
- faults: load through a fault and count (load_through_fault, PartFault, ledger_row)
- metrics: a service's metrics, scraped (scrape, Scraped)
- jsonconverter: envelopes through Kafka Connect's real JsonConverter (envelope_check)
- course: the course's hand-written envelope (COURSE_ENVELOPE, KEY, corrected_course)
- doctor_db: the doctor's database in memory (doctor_database, orders_table_columns)
- session: a private stack or cluster as a session fixture (session_topology)
- held_order: an Order instance whose publishes wait for its test's SIGUSR1 (run as a module)
- tools: the operator tools as subprocesses with a stack's settings (tool_env, run_tool), and
  through make on a private cluster (cluster_make, run_make)
- envelope_strategies: Hypothesis strategies of messages and JSON values
"""
