package main

import (
	"github.com/urfave/cli/v2"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/record"
)

// providerFlags say whose records this node accepts (--allow-provider),
// bound the DHT provider records (ADD_PROVIDER) other peers store on it
// (every node that runs as a DHT server keeps them) and the
// registry-protocol requests and watches every node serves.
func providerFlags() []cli.Flag {
	def := dht.DefaultConfig("")
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "allow-provider", Usage: "accept only records of listed providers: `PEERID` for every service, " +
			"or Service=PEERID for one (repeatable or comma-separated); a record from anyone else is refused on put and dropped by find (default: everyone)"},
		&cli.Float64Flag{Name: "provider-rate", Value: def.ProviderRate,
			Usage: "DHT provider records per second one peer may store or refresh here (token bucket; excess dropped)"},
		&cli.IntFlag{Name: "provider-burst", Value: def.ProviderBurst,
			Usage: "burst of DHT provider records one peer may store at once"},
		&cli.IntFlag{Name: "providers-per-peer", Value: def.ProvidersPerPeer,
			Usage: "DHT provider records one peer may hold here"},
		&cli.IntFlag{Name: "max-provider-records", Value: def.MaxProviderRecords,
			Usage: "DHT provider records held here in all; when full, a newcomer's evicts one of the peer holding the most"},
		&cli.DurationFlag{Name: "provider-lifetime", Value: def.ProviderLifetime,
			Usage: "how long an unrefreshed DHT provider record is kept (at most 48h)"},
		&cli.IntFlag{Name: "fetch-concurrency", Value: def.FetchConcurrency,
			Usage: "provider records one find fetches at once from providers the DHT walk names (the walk waits for a slot)"},
		&cli.Float64Flag{Name: "request-rate", Value: def.RequestRate,
			Usage: "registry-protocol requests per second one peer may send here (token bucket; excess streams are reset)"},
		&cli.IntFlag{Name: "request-burst", Value: def.RequestBurst,
			Usage: "burst of registry-protocol requests one peer may send at once"},
		&cli.IntFlag{Name: "list-page", Value: def.ListPage,
			Usage: "most records one page of a paged registry-protocol list carries (1 to 1024; a page is also cut at 180 KiB of records)"},
		&cli.IntFlag{Name: "watchers-per-peer", Value: def.Watch.PerPeer,
			Usage: "watches one peer may hold here at once (find --watch, netget.watch); one more is dropped saying why"},
		&cli.IntFlag{Name: "max-watchers", Value: def.Watch.Max,
			Usage: "watches this node serves in all"},
		&cli.IntFlag{Name: "watch-queue", Value: def.Watch.Queue,
			Usage: "changes that may wait for one watcher; a watcher that falls further behind is dropped (it watches again with a fresh snapshot)"},
		&cli.DurationFlag{Name: "watch-poll-interval", Value: def.WatchPollInterval,
			Usage: "how often a watch on a node without registries runs a find on the DHT path"},
	}
}

// applyProviderFlags sets cfg's allow-list, provider-record and request
// limits from the flags.
func applyProviderFlags(c *cli.Context, cfg *dht.Config) error {
	allow, err := record.ParseAllowList(c.StringSlice("allow-provider"))
	if err != nil {
		return usageError("--allow-provider: %w", err)
	}
	cfg.Allow = allow
	cfg.ProviderRate = c.Float64("provider-rate")
	cfg.ProviderBurst = c.Int("provider-burst")
	cfg.ProvidersPerPeer = c.Int("providers-per-peer")
	cfg.MaxProviderRecords = c.Int("max-provider-records")
	cfg.ProviderLifetime = c.Duration("provider-lifetime")
	cfg.RequestRate, cfg.RequestBurst = c.Float64("request-rate"), c.Int("request-burst")
	cfg.ListPage = c.Int("list-page")
	cfg.FetchConcurrency = c.Int("fetch-concurrency")
	cfg.Watch = dht.WatchLimits{PerPeer: c.Int("watchers-per-peer"), Max: c.Int("max-watchers"), Queue: c.Int("watch-queue")}
	cfg.WatchPollInterval = c.Duration("watch-poll-interval")
	if err := cfg.Validate(); err != nil {
		return usageError("%w", err)
	}
	return nil
}
