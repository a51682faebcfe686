using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace PushService.Gateway;

/// <summary>Chains further gateway configuration after <c>AddPushGateway</c>.</summary>
/// <param name="Services">The service collection.</param>
/// <param name="Configuration">The application configuration.</param>
public sealed record PushGatewayBuilder(IServiceCollection Services, IConfiguration Configuration);
