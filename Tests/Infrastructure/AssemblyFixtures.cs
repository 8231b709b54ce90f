using SessionGrains.Tests.Infrastructure;

// One Redis server for the whole run; each cluster uses its own service id, so its keys never collide.
[assembly: AssemblyFixture(typeof(RedisServer))]

// One PostgreSQL server too; each cluster on it has a database of its own.
[assembly: AssemblyFixture(typeof(PostgresServer))]

// Every log line of the run is checked for session tokens; a leak fails the run.
[assembly: AssemblyFixture(typeof(TokenLogWatchFixture))]
