package devnet

// Sample is a service a devnet node provides.
type Sample struct {
	Name string
	Meta map[string]string
}

// Samples returns the services devnet nodes provide, in turn: node i
// provides Samples()[i % len].
func Samples() []Sample {
	return []Sample{
		{"DatabaseService", map[string]string{"engine": "postgres", "version": "16.4", "role": "primary", "region": "eu-west", "port": "5432"}},
		{"CacheService", map[string]string{"engine": "redis", "version": "7.2", "maxmemory": "2gb", "region": "eu-west", "port": "6379"}},
		{"WebApp", map[string]string{"version": "1.14.2", "health": "/healthz", "region": "eu-west", "port": "8080"}},
		{"DatabaseService", map[string]string{"engine": "postgres", "version": "16.4", "role": "replica", "region": "us-east", "port": "5432"}},
		{"QueueService", map[string]string{"engine": "nats", "version": "2.10", "stream": "orders", "port": "4222"}},
		{"WebApp", map[string]string{"version": "1.14.2", "health": "/healthz", "region": "us-east", "port": "8080"}},
	}
}
