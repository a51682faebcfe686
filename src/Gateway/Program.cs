var builder = WebApplication.CreateBuilder(args);
builder.UsePushGatewayServer();
builder.Services.AddPushGateway(builder.Configuration);

var app = builder.Build();
app.MapPushEndpoints();
app.Run();

/// <summary>The gateway's entry point; public so functional tests can host it.</summary>
public partial class Program;
