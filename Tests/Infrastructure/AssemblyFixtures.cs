using SessionGrains.Tests.Infrastructure;

// One Redis server for the whole run; each cluster uses its own service id, so its keys never collide.
[assembly: AssemblyFixture(typeof(RedisServer))]
