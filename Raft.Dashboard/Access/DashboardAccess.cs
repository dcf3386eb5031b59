using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.Extensions.Options;
using Raft.Dashboard.Cluster;

namespace Raft.Dashboard.Access;

/// <summary>
/// Who may use the dashboard. With a users file or single sign-on configured, every page and the circuit behind it
/// need a signed-in user (cookie), and only operators may change the cluster. With neither (the embedded demo on
/// loopback), everyone is the operator "anonymous", so the pages and the audit trail work the same way.
/// </summary>
public static class DashboardAccess
{
    public const string NoLoginScheme = "no-login";
    public const string LoginPath = "/login";
    public const string LogoutPath = "/logout";
    private const string SingleSignOnPath = "/login/sso";

    public static void AddDashboardAccess(this IServiceCollection services, DashboardOptions options)
    {
        services.AddCascadingAuthenticationState();
        services.AddAuthorizationBuilder().AddPolicy(DashboardRoles.OperatorPolicy, policy => policy.RequireRole(DashboardRoles.Operator));
        if (!options.LoginRequired)
        {
            services.AddAuthentication(NoLoginScheme).AddScheme<AuthenticationSchemeOptions, NoLoginHandler>(NoLoginScheme, null);
            return;
        }
        DashboardUsers users = string.IsNullOrWhiteSpace(options.UsersFile) ? DashboardUsers.Parse([], "no users file") : DashboardUsers.Load(options.UsersFile);
        services.AddSingleton(users);
        AuthenticationBuilder authentication = services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme).AddCookie(cookie =>
        {
            cookie.LoginPath = LoginPath;
            cookie.LogoutPath = LogoutPath;
            cookie.AccessDeniedPath = LoginPath;
            cookie.Cookie.Name = "raft-dashboard";
            cookie.Cookie.HttpOnly = true;
            cookie.Cookie.SameSite = SameSiteMode.Lax;
            cookie.ExpireTimeSpan = TimeSpan.FromHours(8);
            cookie.SlidingExpiration = true;
        });
        if (options.Oidc.Enabled)
        {
            OidcOptions oidc = options.Oidc;
            authentication.AddOpenIdConnect(oidcOptions =>
            {
                oidcOptions.SignInScheme = CookieAuthenticationDefaults.AuthenticationScheme;
                oidcOptions.Authority = oidc.Authority;
                oidcOptions.ClientId = oidc.ClientId;
                oidcOptions.ClientSecret = string.IsNullOrEmpty(oidc.ClientSecret) ? null : oidc.ClientSecret;
                oidcOptions.ResponseType = "code";
                oidcOptions.Scope.Add("profile");
                oidcOptions.Events.OnTokenValidated = context =>
                {
                    // The provider's claims become this dashboard's two roles, decided in one place.
                    ClaimsPrincipal from = context.Principal!;
                    string name = from.FindFirstValue("preferred_username") ?? from.FindFirstValue("name") ?? from.Identity?.Name ?? "unknown";
                    bool isOperator = from.FindAll(oidc.RoleClaim).Any(c => c.Value == oidc.OperatorValue);
                    context.Principal = Principal(name, isOperator ? DashboardRoles.Operator : DashboardRoles.Viewer, "oidc");
                    return Task.CompletedTask;
                };
            });
        }
    }

    public static ClaimsPrincipal Principal(string name, string role, string how) =>
        new(new ClaimsIdentity([new Claim(ClaimTypes.Name, name), new Claim(ClaimTypes.Role, role)], how));

    public static string NameOf(ClaimsPrincipal user) => user.Identity?.Name ?? "unknown";

    public static string RoleOf(ClaimsPrincipal user) =>
        user.IsInRole(DashboardRoles.Operator) ? DashboardRoles.Operator : user.IsInRole(DashboardRoles.Viewer) ? DashboardRoles.Viewer : "nobody";

    /// <summary>The sign-in page (a plain form, no circuit needed), its answer, and signing out (also a plain form).</summary>
    public static void MapDashboardAccess(this WebApplication app, DashboardOptions options)
    {
        if (!options.LoginRequired)
        {
            return;
        }
        DashboardUsers users = app.Services.GetRequiredService<DashboardUsers>();
        app.MapGet(LoginPath, (HttpContext http, IAntiforgery antiforgery, string? returnUrl) =>
            LoginPage(http, antiforgery, options, LocalOnly(returnUrl), error: null));
        app.MapPost(LoginPath, async (HttpContext http, IAntiforgery antiforgery, ILoggerFactory logs) =>
        {
            try
            {
                await antiforgery.ValidateRequestAsync(http);
            }
            catch (AntiforgeryValidationException)
            {
                return LoginPage(http, antiforgery, options, "/", "The form expired; sign in again.", StatusCodes.Status400BadRequest);
            }
            IFormCollection form = await http.Request.ReadFormAsync();
            string name = form["name"].ToString().Trim();
            string returnUrl = LocalOnly(form["returnUrl"]);
            string? role = name.Length == 0 ? null : users.Verify(name, form["password"].ToString());
            ILogger log = logs.CreateLogger("Raft.Dashboard.Access");
            if (role is null)
            {
                log.LogWarning("sign-in refused for '{Name}' from {Remote}", name, http.Connection.RemoteIpAddress);
                return LoginPage(http, antiforgery, options, returnUrl, "Wrong name or password.", StatusCodes.Status401Unauthorized);
            }
            log.LogInformation("{Name} signed in as {Role} from {Remote}", name, role, http.Connection.RemoteIpAddress);
            await http.SignInAsync(CookieAuthenticationDefaults.AuthenticationScheme, Principal(name, role, "password"));
            return Results.LocalRedirect(returnUrl);
        });
        if (options.Oidc.Enabled)
        {
            app.MapGet(SingleSignOnPath, (string? returnUrl) =>
                Results.Challenge(new AuthenticationProperties { RedirectUri = LocalOnly(returnUrl) }, [OpenIdConnectDefaults.AuthenticationScheme]));
        }
        // Signing out is a POST with the antiforgery token: another site cannot sign a user out, and the layout's
        // button is a plain form, so it works without the circuit (a dropped or busy connection). A GET asks first.
        app.MapGet(LogoutPath, (HttpContext http, IAntiforgery antiforgery) => SignOutPage(http, antiforgery, error: null));
        app.MapPost(LogoutPath, async (HttpContext http, IAntiforgery antiforgery, ILoggerFactory logs) =>
        {
            try
            {
                await antiforgery.ValidateRequestAsync(http);
            }
            catch (AntiforgeryValidationException)
            {
                return SignOutPage(http, antiforgery, "The form expired; sign out again.", StatusCodes.Status400BadRequest);
            }
            if (http.User.Identity?.IsAuthenticated == true)
            {
                logs.CreateLogger("Raft.Dashboard.Access").LogInformation("{Name} signed out", NameOf(http.User));
            }
            await http.SignOutAsync(CookieAuthenticationDefaults.AuthenticationScheme);
            return Results.LocalRedirect(LoginPath);
        });
    }

    /// <summary>Only a path on this site: a login link can never send the user elsewhere.</summary>
    private static string LocalOnly(string? url) =>
        url is { Length: > 0 } && url.StartsWith('/') && !url.StartsWith("//", StringComparison.Ordinal) && !url.StartsWith("/\\", StringComparison.Ordinal) ? url : "/";

    private static IResult LoginPage(HttpContext http, IAntiforgery antiforgery, DashboardOptions options, string returnUrl, string? error, int status = StatusCodes.Status200OK)
    {
        AntiforgeryTokenSet tokens = antiforgery.GetAndStoreTokens(http);
        HtmlEncoder html = HtmlEncoder.Default;
        string passwordForm = string.IsNullOrWhiteSpace(options.UsersFile) ? "" : $"""
            <form method="post" action="{LoginPath}">
              <input type="hidden" name="{html.Encode(tokens.FormFieldName)}" value="{html.Encode(tokens.RequestToken ?? "")}">
              <input type="hidden" name="returnUrl" value="{html.Encode(returnUrl)}">
              <label>Name <input name="name" autocomplete="username" required autofocus data-testid="login-name"></label>
              <label>Password <input name="password" type="password" autocomplete="current-password" required data-testid="login-password"></label>
              <button type="submit" data-testid="login-submit">Sign in</button>
            </form>
            """;
        string singleSignOn = options.Oidc.Enabled
            ? $"""<p><a href="{SingleSignOnPath}?returnUrl={Uri.EscapeDataString(returnUrl)}" data-testid="login-sso">Sign in with {html.Encode(new Uri(options.Oidc.Authority).Host)}</a></p>"""
            : "";
        string message = error is null ? "" : $"""<p role="alert" data-testid="login-error">{html.Encode(error)}</p>""";
        return PlainPage("Sign in", message + passwordForm + singleSignOn, status);
    }

    private static IResult SignOutPage(HttpContext http, IAntiforgery antiforgery, string? error, int status = StatusCodes.Status200OK)
    {
        AntiforgeryTokenSet tokens = antiforgery.GetAndStoreTokens(http);
        HtmlEncoder html = HtmlEncoder.Default;
        string message = error is null ? "" : $"""<p role="alert" data-testid="logout-error">{html.Encode(error)}</p>""";
        string form = $"""
            <form method="post" action="{LogoutPath}">
              <input type="hidden" name="{html.Encode(tokens.FormFieldName)}" value="{html.Encode(tokens.RequestToken ?? "")}">
              <button type="submit" data-testid="logout-submit">Sign out</button> <a href="/">Back to the cluster</a>
            </form>
            """;
        return PlainPage("Sign out", message + form, status);
    }

    /// <summary>The sign-in and sign-out pages: plain HTML, no circuit and no script.</summary>
    private static IResult PlainPage(string title, string body, int status)
    {
        string page = $$"""
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>{{title}} · Raft cluster</title>
            <style>body{font-family:system-ui,sans-serif;max-width:22rem;margin:4rem auto}label{display:block;margin:.6rem 0}input{display:block;width:100%;padding:.4rem}button{padding:.4rem 1.2rem}[role=alert]{color:#b00020}</style>
            </head><body><h1>Raft cluster</h1>{{body}}</body></html>
            """;
        return Results.Content(page, "text/html; charset=utf-8", statusCode: status);
    }

    /// <summary>Without a login, every request is the operator "anonymous": the demo on loopback needs no account.</summary>
    private sealed class NoLoginHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder)
        : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
    {
        protected override Task<AuthenticateResult> HandleAuthenticateAsync() =>
            Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(Principal("anonymous", DashboardRoles.Operator, NoLoginScheme), NoLoginScheme)));
    }
}
