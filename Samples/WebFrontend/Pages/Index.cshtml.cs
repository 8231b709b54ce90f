namespace SessionGrains.WebFrontend.Pages;

public sealed class IndexModel(ISessionStore store) : FrontendPageModel(store)
{
    public int Visits { get; private set; }

    public async Task OnGetAsync()
    {
        await LoadSessionsAsync();

        // ASP.NET Core session state, kept in the cluster by the IDistributedCache adapter.
        await HttpContext.Session.LoadAsync();
        Visits = (HttpContext.Session.GetInt32("visits") ?? 0) + 1;
        HttpContext.Session.SetInt32("visits", Visits);
    }
}
