/* SPDX-License-Identifier: MIT */
/* The one declarative table of configuration keys (SPEC §3).
 *
 * X(field, "section.key", TYPE, "default", min, max, "doc")
 *   field    member name in struct config
 *   TYPE     STR | INT | DOUBLE | BOOL | MS (duration, stored in ms) |
 *            SIZE (bytes) | ENUM (min/max unused; allowed words in doc
 *            before the first ':', separated by '|') | SECRET (a string
 *            printed as ******** by --print-config)
 *   default  as it would be written in the config file ("" = unset)
 *   min/max  inclusive bounds for INT, DOUBLE, MS, SIZE
 *
 * docs/CONFIGURATION.md documents every key; tests/unit/test_config_docs.c
 * fails when one is missing there. */
#ifndef JW_CONFIG_KEYS_H
#define JW_CONFIG_KEYS_H

#include "jw_build_config.h" /* JW_WEB_ROOT */

#define JW_CONFIG_KEYS(X)                                                                          \
	X(database_url, "database.url", STR, "", 0, 0, "libpq connection string or URI")               \
	X(log_level, "log.level", ENUM, "info", 0, 0, "debug|info|warn|error: least severe level logged") \
	X(log_format, "log.format", ENUM, "text", 0, 0, "text|json: one line per event on stderr")     \
	X(worker_queues, "worker.queues", STR, "default", 0, 0, "comma-separated queues to claim from") \
	X(worker_concurrency, "worker.concurrency", INT, "16", 1, 4096, "jobs in flight per process")  \
	X(worker_lease_ms, "worker.lease_ms", MS, "30000", 1000, 86400000, "lease of a claimed job")   \
	X(worker_heartbeat_ms, "worker.heartbeat_ms", MS, "10000", 100, 3600000, "heartbeat interval") \
	X(worker_shutdown_grace_ms, "worker.shutdown_grace_ms", MS, "30000", 0, 86400000,              \
	  "drain time on SIGTERM")                                                                     \
	X(worker_poll_ms, "worker.poll_ms", MS, "1000", 10, 60000, "fallback poll without wake-up")    \
	X(worker_name, "worker.name", STR, "", 0, 0, "worker id; default HOST:PID:RANDOM")             \
	X(coordinator_timer, "coordinator.timer", ENUM, "wheel", 0, 0, "wheel|heap: delayed-job timer") \
	X(coordinator_horizon_ms, "coordinator.horizon_ms", MS, "300000", 1000, 86400000,             \
	  "delayed jobs due this soon are kept in memory")                                             \
	X(coordinator_cursor_ms, "coordinator.cursor_ms", MS, "20", 1, 10000,                          \
	  "how often the leader reads newly scheduled jobs")                                           \
	X(coordinator_maintenance_ms, "coordinator.maintenance_ms", MS, "1000", 50, 600000,            \
	  "period of leases, lost workers, aging, hung jobs")                                          \
	X(coordinator_retention_ms, "coordinator.retention_ms", MS, "60000", 100, 86400000,            \
	  "period of retention pruning")                                                               \
	X(retention_events, "retention.events", MS, "1d", 0, 31536000000, "keep events (jobwheel.events)") \
	X(starvation_max_wait_ms, "starvation.max_wait_ms", MS, "300000", 1000, 86400000,              \
	  "a ready job waiting this long goes first")                                                  \
	X(retention_succeeded, "retention.succeeded", MS, "7d", 0, 31536000000, "keep finished jobs")   \
	X(retention_dead, "retention.dead", MS, "30d", 0, 31536000000, "keep dead jobs")                \
	X(gateway_listen, "gateway.listen", STR, "127.0.0.1:8080", 0, 0, "HTTP listen address")        \
	X(gateway_max_body, "gateway.max_body", SIZE, "1MiB", 1024, 1073741824, "request body limit")  \
	X(gateway_max_header, "gateway.max_header", SIZE, "16KiB", 1024, 1048576,                      \
	  "request line and headers limit (431 beyond)")                                               \
	X(gateway_max_connections, "gateway.max_connections", INT, "20000", 1, 1000000,                \
	  "open client connections (503 beyond)")                                                      \
	X(gateway_idle_timeout_ms, "gateway.idle_timeout_ms", MS, "60000", 100, 86400000,              \
	  "close a keep-alive connection idle this long")                                              \
	X(gateway_request_timeout_ms, "gateway.request_timeout_ms", MS, "10000", 100, 3600000,         \
	  "a request must arrive whole within this (slow clients)")                                    \
	X(gateway_db_pool, "gateway.db_pool", INT, "4", 1, 64, "database connections for API requests") \
	X(gateway_web_root, "gateway.web_root", STR, JW_WEB_ROOT, 0, 0, "directory of the dashboard files") \
	X(sse_max_job_events_per_s, "sse.max_job_events_per_s", INT, "1000", 1, 1000000,              \
	  "per-client job-event budget")                                                               \
	X(sse_poll_ms, "sse.poll_ms", MS, "50", 5, 10000,                                              \
	  "how often the gateway reads the change feed")                                               \
	X(sse_keepalive_ms, "sse.keepalive_ms", MS, "15000", 100, 3600000, "SSE keepalive comment period") \
	X(sse_ring_events, "sse.ring_events", INT, "65536", 1024, 16777216,                             \
	  "recent events kept in memory for replay and slow clients")                                  \
	X(email_mode, "email.mode", ENUM, "mock", 0, 0, "mock|smtp: how the email kind sends")         \
	X(email_smtp_url, "email.smtp_url", STR, "", 0, 0, "SMTP server, e.g. smtp://127.0.0.1:2525")  \
	X(email_from, "email.from", STR, "", 0, 0, "default sender address")                           \
	X(email_smtp_user_env, "email.smtp_user_env", STR, "", 0, 0,                                  \
	  "environment variable holding the SMTP user name (AUTH)")                                    \
	X(email_smtp_password_env, "email.smtp_password_env", STR, "", 0, 0,                          \
	  "environment variable holding the SMTP password (AUTH)")                                     \
	X(email_failure_rate, "email.failure_rate", DOUBLE, "0", 0, 1, "mock mode failure probability") \
	X(email_mock_latency_ms, "email.mock_latency_ms", MS, "50", 0, 600000, "mock mode latency")    \
	X(email_mock_seed, "email.mock_seed", INT, "0", 0, 2147483647,                                 \
	  "seed of the mock failure draw; 0 = random")                                                 \
	X(http_allow, "http.allow", STR, "", 0, 0, "hosts/CIDRs allowed although private or loopback") \
	X(http_signing_secret_env, "http.signing_secret_env", STR, "", 0, 0,                          \
	  "environment variable holding the webhook signing secret")                                   \
	X(exec_allow, "exec.allow", STR, "", 0, 0, "allow-listed programs: name=/abs/path,...") \
	X(llm_chain_default, "llm.chain.default", STR, "gemini,openrouter,groq", 0, 0, "LLM provider order") \
	X(llm_max_retry_after_ms, "llm.max_retry_after_ms", MS, "30000", 0, 3600000, "longest Retry-After honoured") \
	X(llm_breaker_open_ms, "llm.breaker_open_ms", MS, "30000", 10, 3600000, "LLM circuit breaker open period") \
	X(llm_provider_gemini_api, "llm.provider.gemini.api", ENUM, "gemini", 0, 0, "gemini|openai: API shape") \
	X(llm_provider_gemini_base_url, "llm.provider.gemini.base_url", STR, "https://generativelanguage.googleapis.com/v1beta", 0, 0, "API base URL") \
	X(llm_provider_gemini_model, "llm.provider.gemini.model", STR, "gemini-2.0-flash", 0, 0, "model name") \
	X(llm_provider_gemini_api_key_env, "llm.provider.gemini.api_key_env", STR, "GEMINI_API_KEY", 0, 0, "env var with the API key") \
	X(llm_provider_gemini_retries, "llm.provider.gemini.retries", INT, "2", 0, 10, "retries of retryable errors") \
	X(llm_provider_gemini_timeout_ms, "llm.provider.gemini.timeout_ms", MS, "30000", 100, 600000, "per-request timeout") \
	X(llm_provider_openrouter_api, "llm.provider.openrouter.api", ENUM, "openai", 0, 0, "gemini|openai: API shape") \
	X(llm_provider_openrouter_base_url, "llm.provider.openrouter.base_url", STR, "https://openrouter.ai/api/v1", 0, 0, "API base URL") \
	X(llm_provider_openrouter_model, "llm.provider.openrouter.model", STR, "openai/gpt-4o-mini", 0, 0, "model name") \
	X(llm_provider_openrouter_api_key_env, "llm.provider.openrouter.api_key_env", STR, "OPENROUTER_API_KEY", 0, 0, "env var with the API key") \
	X(llm_provider_openrouter_retries, "llm.provider.openrouter.retries", INT, "2", 0, 10, "retries of retryable errors") \
	X(llm_provider_openrouter_timeout_ms, "llm.provider.openrouter.timeout_ms", MS, "30000", 100, 600000, "per-request timeout") \
	X(llm_provider_groq_api, "llm.provider.groq.api", ENUM, "openai", 0, 0, "gemini|openai: API shape") \
	X(llm_provider_groq_base_url, "llm.provider.groq.base_url", STR, "https://api.groq.com/openai/v1", 0, 0, "API base URL") \
	X(llm_provider_groq_model, "llm.provider.groq.model", STR, "llama-3.1-8b-instant", 0, 0, "model name") \
	X(llm_provider_groq_api_key_env, "llm.provider.groq.api_key_env", STR, "GROQ_API_KEY", 0, 0, "env var with the API key") \
	X(llm_provider_groq_retries, "llm.provider.groq.retries", INT, "2", 0, 10, "retries of retryable errors") \
	X(llm_provider_groq_timeout_ms, "llm.provider.groq.timeout_ms", MS, "30000", 100, 600000, "per-request timeout")

#endif
